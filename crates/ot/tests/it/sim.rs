//! A reference client/server simulator: N sites with in-flight and pending edits (the
//! Jupiter / ShareDB client) and one server ordering edits, driven by random schedules.

use std::collections::VecDeque;

use montage_ot::{Op, Side, Value};

use crate::fuzz::{self, Rng};

pub enum ToClient {
    Ack { version: u64 },
    Op { version: u64, op: Op },
}

pub struct Submit {
    pub base: u64,
    pub op: Op,
}

pub struct Server {
    pub doc: Value,
    pub history: Vec<Op>,
    /// Every submission as received (base, op), when `record` is set: for replaying the
    /// server's work alone.
    pub received: Vec<(u64, Op)>,
    pub record: bool,
}

impl Server {
    pub fn new(doc: Value) -> Server {
        Server {
            doc,
            history: Vec::new(),
            received: Vec::new(),
            record: false,
        }
    }
    pub fn version(&self) -> u64 {
        self.history.len() as u64
    }
    /// Transforms against versions base+1..head and applies as head+1.
    pub fn receive(&mut self, s: Submit) -> Op {
        if self.record {
            self.received.push((s.base, s.op.clone()));
        }
        let mut op = s.op;
        for h in &self.history[s.base as usize..] {
            op = op.transform(h, Side::Right);
        }
        op.apply(&mut self.doc)
            .unwrap_or_else(|e| panic!("server apply failed: {e}"));
        self.history.push(op.clone());
        op
    }
}

pub struct Client {
    pub doc: Value,
    pub version: u64,
    pub inflight: Option<Op>,
    /// Edits not yet sent. Composed into one unless `queue` is set, in which case each is sent
    /// on its own (so a replay can control exactly what others see).
    pub pending: VecDeque<Op>,
    pub queue: bool,
    pub outbox: VecDeque<Submit>,
    pub inbox: VecDeque<ToClient>,
    /// Server ops received (not counting acks of its own).
    pub seen_others: u64,
}

impl Client {
    pub fn new(doc: Value, queue: bool) -> Client {
        Client {
            doc,
            version: 0,
            inflight: None,
            pending: VecDeque::new(),
            queue,
            outbox: VecDeque::new(),
            inbox: VecDeque::new(),
            seen_others: 0,
        }
    }

    /// A local edit: applied at once, then sent or queued.
    pub fn edit(&mut self, op: Op) {
        op.apply(&mut self.doc)
            .unwrap_or_else(|e| panic!("local apply failed: {e}"));
        if self.queue || self.pending.is_empty() {
            self.pending.push_back(op);
        } else if let Some(p) = self.pending.back_mut() {
            *p = p.compose(&op);
        }
        self.flush();
    }

    fn flush(&mut self) {
        if self.inflight.is_none()
            && let Some(op) = self.pending.pop_front()
        {
            self.outbox.push_back(Submit {
                base: self.version,
                op: op.clone(),
            });
            self.inflight = Some(op);
        }
    }

    /// Handles the next message from the server.
    pub fn deliver(&mut self) -> bool {
        let Some(msg) = self.inbox.pop_front() else {
            return false;
        };
        match msg {
            ToClient::Ack { version } => {
                assert_eq!(version, self.version + 1, "acks arrive in order");
                self.version = version;
                self.inflight = None;
                self.flush();
            }
            ToClient::Op { version, op } => {
                assert_eq!(version, self.version + 1, "ops arrive in order");
                self.version = version;
                self.seen_others += 1;
                // The server's op came first: it is Left against everything still local.
                let mut incoming = op;
                if let Some(inf) = &self.inflight {
                    let (a, b) = incoming.transform_x(inf, Side::Left);
                    incoming = a;
                    self.inflight = Some(b);
                }
                for p in self.pending.iter_mut() {
                    let (a, b) = incoming.transform_x(p, Side::Left);
                    incoming = a;
                    *p = b;
                }
                incoming
                    .apply(&mut self.doc)
                    .unwrap_or_else(|e| panic!("remote apply failed: {e}"));
            }
        }
        true
    }

    pub fn idle(&self) -> bool {
        self.inflight.is_none()
            && self.pending.is_empty()
            && self.outbox.is_empty()
            && self.inbox.is_empty()
    }
}

pub struct Sim {
    pub server: Server,
    pub clients: Vec<Client>,
}

impl Sim {
    pub fn new(doc: Value, sites: usize, queue: bool) -> Sim {
        Sim {
            server: Server::new(doc.clone()),
            clients: (0..sites)
                .map(|_| Client::new(doc.clone(), queue))
                .collect(),
        }
    }

    /// The server takes the next edit from client `i`'s outbox.
    pub fn upload(&mut self, i: usize) -> bool {
        let Some(s) = self.clients[i].outbox.pop_front() else {
            return false;
        };
        let op = self.server.receive(s);
        let version = self.server.version();
        for (j, c) in self.clients.iter_mut().enumerate() {
            c.inbox.push_back(if i == j {
                ToClient::Ack { version }
            } else {
                ToClient::Op {
                    version,
                    op: op.clone(),
                }
            });
        }
        true
    }

    pub fn drain(&mut self) {
        loop {
            let mut progress = false;
            for i in 0..self.clients.len() {
                progress |= self.upload(i);
                while self.clients[i].deliver() {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
    }

    pub fn assert_converged(&self, seed: u64) {
        for (i, c) in self.clients.iter().enumerate() {
            assert!(c.idle(), "client {i} still has work");
            assert_eq!(c.version, self.server.version());
            assert_eq!(
                c.doc, self.server.doc,
                "site {i} diverged from the server (seed {seed})"
            );
        }
    }
}

/// One random schedule: sites edit, upload and receive in random interleavings.
pub fn run_schedule(seed: u64, steps: usize) {
    let mut r = Rng::new(seed);
    let sites = 3 + r.below(3);
    // Half the schedules compose pending edits, half send them one by one.
    let mut sim = Sim::new(fuzz::doc(&mut r), sites, seed % 2 == 1);
    for _ in 0..steps {
        let i = r.below(sites);
        match r.below(10) {
            0..=3 => {
                let op = fuzz::op(&mut r, &sim.clients[i].doc);
                sim.clients[i].edit(op);
            }
            4..=6 => {
                sim.upload(i);
            }
            _ => {
                for _ in 0..1 + r.below(3) {
                    sim.clients[i].deliver();
                }
            }
        }
    }
    sim.drain();
    sim.assert_converged(seed);
}

#[test]
fn sites_converge_over_thousands_of_random_schedules() {
    for seed in 0..2000 {
        run_schedule(seed, 60);
    }
}

#[test]
fn long_schedules_converge() {
    for seed in 10_000..10_020 {
        run_schedule(seed, 2000);
    }
}
