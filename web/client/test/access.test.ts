// Access from the client's side (DESIGN §9.1), against the in-memory server of fakenet.ts with
// access rules on: fresh tokens from `getToken` per connection and on `token_expiring`, a
// refused join as an `AccessError`, link access opened and closed by the owner, removal,
// deletion; and the typed HTTP helpers against a fake `fetch`.
import { describe, expect, it } from "vitest";
import {
  AccessError,
  ApiError,
  AuthError,
  type FetchLike,
  type JsonObject,
  Keyring,
  MontageClient,
  type RequestBody,
  SessionKey,
  SessionsApi,
  type StatusEvent,
  newDocument,
  roleAtLeast,
  tokenSubject,
} from "../src/index.js";
import { FakeClock, FakeNet, fakeClient, fakeJwt, settle, tick } from "./fakenet.js";


const mk = fakeClient;

function collect<T>(c: MontageClient, ev: Parameters<MontageClient["on"]>[0]): T[] {
  const out: T[] = [];
  c.on(ev, (e: unknown) => out.push(e as T));
  return out;
}

describe("tokens", () => {
  it("reads the user from a JWT and nothing from other strings", () => {
    expect(tokenSubject(fakeJwt("zoë"))).toBe("zoë");
    for (const bad of ["t0", "a.b.c", "", "x.!!!.y"]) expect(tokenSubject(bad)).toBeNull();
  });

  it("getToken gives every connection a fresh token, in the URL", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    let n = 0;
    const a = mk(net, clock, "alice", { token: undefined, getToken: async () => fakeJwt("alice", 1000 + ++n) });
    expect(net.opening).toHaveLength(0); // not before the token came
    await settle(net);
    expect(a.connectionState).toBe("online");
    expect(a.user).toBe("alice");
    const conn = () => net.conns.find((c) => c.user === "alice")!;
    expect(new URL(conn().url).searchParams.get("token")).toBe(fakeJwt("alice", 1001));
    net.drop(conn());
    clock.runNext();
    await settle(net);
    expect(a.connectionState).toBe("online");
    expect(n).toBe(2);
    expect(new URL(conn().url).searchParams.get("token")).toBe(fakeJwt("alice", 1002));
  });

  it("token_expiring: a new token goes out as auth and authed comes back", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    let n = 0;
    const a = mk(net, clock, "alice", { getToken: () => fakeJwt("alice", 5000 + ++n) });
    await settle(net);
    const expiring = collect<{ exp: number }>(a, "tokenExpiring");
    const authed = collect<{ exp: number }>(a, "authed");
    net.push("alice", { type: "token_expiring", exp: 5001 });
    await settle(net);
    expect(expiring).toEqual([{ exp: 5001 }]);
    const auths = net.log.filter((m) => m["type"] === "auth");
    expect(auths).toHaveLength(1);
    expect(auths[0]!["token"]).toBe(fakeJwt("alice", 5002));
    expect(authed).toEqual([{ exp: 5002 }]);
    expect(a.connectionState).toBe("online"); // same socket
    expect(net.log.filter((m) => m["type"] === "join")).toHaveLength(1);
  });

  it("without getToken, authenticate(token) refreshes by hand", async () => {
    const net = new FakeNet(newDocument());
    const a = mk(net, new FakeClock(), "alice");
    net.drain();
    const authed = collect<{ exp: number }>(a, "authed");
    a.authenticate(fakeJwt("alice", 7000));
    net.drain();
    expect(authed).toEqual([{ exp: 7000 }]);
  });

  it("another user's token is refused: unauthorized, close 4401, a fresh token at once", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const tokens = [fakeJwt("alice"), fakeJwt("mallory"), fakeJwt("alice", 9)];
    let calls = 0;
    const a = mk(net, clock, "alice", { getToken: () => tokens[Math.min(calls++, tokens.length - 1)]! });
    await settle(net);
    const errors = collect<{ code: string; rid?: string }>(a, "error");
    const states = collect<StatusEvent>(a, "status");
    net.push("alice", { type: "token_expiring", exp: 1 });
    await settle(net);
    expect(errors).toMatchObject([{ code: "unauthorized", rid: expect.stringMatching(/^auth:/) }]);
    expect(states).toContainEqual(expect.objectContaining({ state: "reconnecting", closeCode: 4401, closeReason: "token of another user" }));
    expect(clock.tasks.size).toBe(0); // no backoff: retried at once
    expect(a.connectionState).toBe("online");
    expect(calls).toBe(3);
    expect(new URL(net.conns.find((c) => c.user === "alice")!.url).searchParams.get("token")).toBe(fakeJwt("alice", 9));
  });

  it("without a token function, a refused refresh (4401) is terminal; connect() uses the old token", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const a = mk(net, clock, "alice");
    net.drain();
    const errors = collect<{ code: string }>(a, "error");
    const states = collect<StatusEvent>(a, "status");
    const unauthorized = collect<AuthError>(a, "unauthorized");
    a.authenticate(fakeJwt("mallory"));
    net.drain();
    expect(errors).toMatchObject([{ code: "unauthorized" }]);
    expect(a.user).toBe("alice");
    expect(a.connectionState).toBe("unauthorized");
    expect(states.at(-1)).toMatchObject({ state: "unauthorized", closeCode: 4401, closeReason: "token of another user" });
    expect(unauthorized).toHaveLength(1);
    expect(unauthorized[0]).toMatchObject({ code: "unauthorized", reason: "token of another user", closeCode: 4401 });
    expect(clock.tasks.size).toBe(0);
    await expect(a.ready()).rejects.toBeInstanceOf(AuthError);
    a.connect();
    net.drain();
    expect(a.connectionState).toBe("online");
    const conn = net.conns.find((c) => c.user === "alice")!;
    expect(new URL(conn.url).searchParams.get("token")).toBe(fakeJwt("alice"));
  });

  it("a getToken that fails is retried with backoff; disconnect while it runs opens nothing", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    let fail = true;
    const a = mk(net, clock, "alice", {
      getToken: async () => {
        if (fail) throw new Error("signed out");
        return fakeJwt("alice");
      },
    });
    const errors = collect<{ code: string; message: string }>(a, "error");
    await settle(net);
    expect(errors).toMatchObject([{ code: "unauthorized", message: expect.stringContaining("signed out") }]);
    expect(a.connectionState).toBe("offline");
    fail = false;
    clock.runNext();
    await settle(net);
    expect(a.connectionState).toBe("online");

    const b = mk(net, clock, "bob", { getToken: async () => fakeJwt("bob") });
    b.disconnect();
    await settle(net);
    expect(net.conns.filter((c) => c.user === "bob")).toHaveLength(0);
    expect(b.connectionState).toBe("offline");
  });
});

describe("who may see a session", () => {
  it("a refused join is an AccessError; once the owner opens link access, connect() joins", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    net.restrict("alice", { title: "Poster" });
    const alice = mk(net, clock, "alice");
    net.drain();
    expect(alice.role).toBe("owner");
    expect(alice.linkRole).toBe("none");
    expect(alice.title).toBe("Poster");

    const bob = mk(net, clock, "bob");
    const denied = collect<AccessError>(bob, "accessDenied");
    const ready = bob.ready();
    net.drain();
    await expect(ready).rejects.toBeInstanceOf(AccessError);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ reason: "forbidden", code: "forbidden", retryable: true });
    expect(denied[0]!.message).toMatch(/ask its owner/);
    expect(bob.accessError).toBe(denied[0]);
    expect(bob.connectionState).toBe("offline");
    expect(clock.tasks.size).toBe(0); // no reconnect loop
    expect(net.conns.filter((c) => c.user === "bob")).toHaveLength(0); // its socket is closed
    await expect(bob.ready()).rejects.toBeInstanceOf(AccessError);

    const changed = collect<{ role: string }>(alice, "linkRoleChanged");
    expect(alice.setLinkRole("editor")).toBe(true);
    net.drain();
    expect(changed).toEqual([{ role: "editor" }]);
    bob.connect();
    expect(bob.accessError).toBeNull();
    const joined = bob.ready();
    net.drain();
    await joined;
    expect(bob.role).toBe("editor");
    expect(bob.linkRole).toBe("editor");
    bob.submit([{ op: "set", path: ["title"], value: "by bob" }]);
    net.drain();
    expect((alice.doc as JsonObject)["title"]).toBe("by bob");
  });

  for (const removal of ["role_changed", "forbidden", "both"] as const) {
    it(`closing link access takes a link user out (told by ${removal})`, () => {
      const net = new FakeNet(newDocument());
      const clock = new FakeClock();
      net.restrict("alice", { linkRole: "editor", removal });
      net.access!.grants.set("carol", "viewer");
      const alice = mk(net, clock, "alice");
      const bob = mk(net, clock, "bob");
      const carol = mk(net, clock, "carol");
      net.drain();
      expect(bob.role).toBe("editor");
      const denied = collect<AccessError>(bob, "accessDenied");
      const links = [alice, bob, carol].map((c) => collect<{ role: string }>(c, "linkRoleChanged"));
      alice.setLinkRole("none");
      for (let i = 0; i < 5; i++) {
        net.drain();
        clock.runNext();
      }
      expect(links[0]).toEqual([{ role: "none" }]);
      expect(links[2]).toEqual([{ role: "none" }]);
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({ reason: "removed", code: "forbidden" });
      expect(bob.connectionState).toBe("offline");
      expect(clock.tasks.size).toBe(0);
      // carol holds a grant: still in, still online.
      expect(carol.connectionState).toBe("online");
      expect(carol.accessError).toBeNull();
      expect(alice.participants.map((p) => p.user).sort()).toEqual(["alice", "carol"]);
    });
  }

  it("removed by set_role none: out at once, and pending edits stay unsent", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    net.restrict("alice", { linkRole: "editor" });
    const alice = mk(net, clock, "alice");
    const bob = mk(net, clock, "bob");
    net.drain();
    const roles = collect<{ user: string; role: string }>(bob, "role");
    alice.sendMessage({ type: "set_role", session: "s1", user: "bob", role: "none" });
    net.deliverToServer(net.conns.find((c) => c.user === "alice")!);
    bob.submit([{ op: "set", path: ["title"], value: "too late" }]);
    net.drain();
    expect(roles).toEqual([{ user: "bob", role: "none" }]);
    expect(bob.accessError?.reason).toBe("removed");
    expect(bob.role).toBe("none");
    expect(net.history).toHaveLength(0);
  });

  it("a user demoted to none whose edit is refused ends out of the session, not in a loop", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    net.restrict("alice", { linkRole: "editor" });
    const alice = mk(net, clock, "alice");
    // bob's client does not know who it is (a token that is no JWT): only the server's
    // answers tell it.
    const bob = mk(net, clock, "bob", { token: "opaque" });
    net.drain();
    expect(bob.user).toBeNull();
    net.access!.linkRole = "none"; // changed elsewhere, nobody told
    const rejected = collect<unknown>(bob, "rejected");
    bob.submit([{ op: "set", path: ["title"], value: "x" }]);
    for (let i = 0; i < 5; i++) {
      net.drain();
      clock.runNext();
    }
    expect(rejected).toHaveLength(1);
    expect(bob.accessError?.reason).toBe("removed");
    expect(clock.tasks.size).toBe(0);
    expect(alice.connectionState).toBe("online");
  });

  it("session_deleted: sessionDeleted, then AccessError deleted; a later join is not_found", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    net.restrict("alice", { linkRole: "viewer" });
    const alice = mk(net, clock, "alice");
    const bob = mk(net, clock, "bob");
    net.drain();
    const deleted = collect<{ session: string }>(bob, "sessionDeleted");
    const denied = collect<AccessError>(bob, "accessDenied");
    net.deleteSession("s1");
    net.drain();
    expect(deleted).toEqual([{ session: "s1" }]);
    expect(denied[0]).toMatchObject({ reason: "deleted", code: "not_found", retryable: false });
    expect(alice.accessError?.reason).toBe("deleted");
    bob.connect();
    const again = bob.ready();
    net.drain();
    await expect(again).rejects.toMatchObject({ reason: "not_found" });
  });

  it("only the owner sets the link role: others get an error with the request's rid", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    net.restrict("alice", { linkRole: "editor" });
    mk(net, clock, "alice");
    const bob = mk(net, clock, "bob");
    net.drain();
    const errors = collect<{ code: string; rid?: string }>(bob, "error");
    bob.setLinkRole("viewer");
    net.drain();
    expect(errors).toMatchObject([{ code: "forbidden", rid: expect.stringMatching(/^link_role:/) }]);
    expect(bob.accessError).toBeNull();
    expect(bob.connectionState).toBe("online");
    expect(net.access!.linkRole).toBe("editor");
  });

  it("a grant to someone who is not here lists them as an away member", () => {
    const net = new FakeNet(newDocument());
    net.restrict("alice");
    const alice = mk(net, new FakeClock(), "alice");
    net.drain();
    const seen = collect<unknown[]>(alice, "participants");
    alice.sendMessage({ type: "set_role", session: "s1", user: "dave", role: "commenter" });
    net.drain();
    expect(alice.participants).toContainEqual({ user: "dave", role: "commenter", online: false });
    expect(seen.length).toBeGreaterThan(0);
    alice.sendMessage({ type: "set_role", session: "s1", user: "dave", role: "none" });
    net.drain();
    expect(alice.participants.map((p) => p.user)).toEqual(["alice"]);
  });

  it("roles compare by rank", () => {
    expect(roleAtLeast("owner", "editor")).toBe(true);
    expect(roleAtLeast("commenter", "commenter")).toBe(true);
    expect(roleAtLeast("viewer", "commenter")).toBe(false);
    expect(roleAtLeast("none", "viewer")).toBe(false);
    expect(roleAtLeast(null, "viewer")).toBe(false);
  });
});

describe("SessionsApi", () => {
  type Call = { url: string; method: string; headers: Record<string, string>; body?: RequestBody };
  function fakeFetch(answers: { status: number; body?: unknown; headers?: Record<string, string> }[]) {
    const calls: Call[] = [];
    const f: FetchLike = async (url, init) => {
      calls.push({ url, ...init });
      const a = answers.shift()!;
      const text = a.body === undefined ? "" : typeof a.body === "string" ? a.body : JSON.stringify(a.body);
      return {
        status: a.status,
        ok: a.status >= 200 && a.status < 300,
        headers: { get: (n: string) => a.headers?.[n.toLowerCase()] ?? null },
        text: async () => text,
      };
    };
    return { f, calls };
  }

  it("makes the four calls with the bearer token and reads their answers", async () => {
    const { f, calls } = fakeFetch([
      { status: 201, body: { id: "abc", title: "Poster", link_role: "none", role: "owner", version: 0 } },
      { status: 200, body: { sessions: [{ id: "abc", title: "Poster", role: "owner", version: 3, updated: 1700000000000 }] } },
      { status: 200, body: { id: "abc", title: "Poster", role: "owner", link_role: "viewer", version: 3, updated: 1 } },
      { status: 204 },
    ]);
    let n = 0;
    const api = new SessionsApi({ baseUrl: "http://m.test/", token: () => `tok${++n}`, fetch: f });
    const s = await api.create({ title: "Poster" });
    expect(s).toMatchObject({ id: "abc", title: "Poster", link_role: "none", role: "owner" });
    expect(await api.list()).toEqual([{ id: "abc", title: "Poster", role: "owner", version: 3, updated: 1700000000000 }]);
    expect((await api.update("abc", { link_role: "viewer" })).link_role).toBe("viewer");
    await api.delete("abc");
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST http://m.test/v1/sessions",
      "GET http://m.test/v1/sessions",
      "PATCH http://m.test/v1/sessions/abc",
      "DELETE http://m.test/v1/sessions/abc",
    ]);
    expect(calls.map((c) => c.headers["Authorization"])).toEqual(["Bearer tok1", "Bearer tok2", "Bearer tok3", "Bearer tok4"]);
    expect(JSON.parse(String(calls[0]!.body))).toEqual({ title: "Poster" });
    expect(calls[0]!.headers["Content-Type"]).toBe("application/json");
    expect(JSON.parse(String(calls[2]!.body))).toEqual({ link_role: "viewer" });
    expect(calls[1]!.body).toBeUndefined();
  });

  it("reads past states and versions, names one and restores", async () => {
    const { f, calls } = fakeFetch([
      { status: 200, body: { version: 3, state: { title: "Draft" } } },
      { status: 200, body: { versions: [{ version: 3, time: 1700000000000, user: "ann", name: "draft", named_by: "ann" }] } },
      { status: 201, body: { version: 3, name: "draft", named_by: "ann" } },
      { status: 200, body: { version: 9 } },
      { status: 404, body: { type: "error", code: "not_found", message: "version 99 of s 1 is not in history" } },
    ]);
    const api = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: f });
    expect(await api.state("s 1", 3)).toEqual({ version: 3, state: { title: "Draft" } });
    expect((await api.versions("s 1", { before: 10, limit: 5 }))[0]).toMatchObject({ version: 3, name: "draft" });
    await api.nameVersion("s 1", 3, "draft");
    expect(await api.restore("s 1", 3, { id: "L1" })).toBe(9);
    await expect(api.restore("s 1", 99)).rejects.toMatchObject({ code: "not_found", status: 404 });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET http://m.test/v1/sessions/s%201?version=3",
      "GET http://m.test/v1/sessions/s%201/versions?before=10&limit=5",
      "POST http://m.test/v1/sessions/s%201/versions",
      "POST http://m.test/v1/sessions/s%201/restore",
      "POST http://m.test/v1/sessions/s%201/restore",
    ]);
    expect(JSON.parse(String(calls[2]!.body))).toEqual({ version: 3, name: "draft" });
    expect(JSON.parse(String(calls[3]!.body))).toEqual({ version: 3, id: "L1" });
    expect(JSON.parse(String(calls[4]!.body))).toEqual({ version: 99 });
  });

  it("uploads bytes, and makes the invite calls", async () => {
    const { f, calls } = fakeFetch([
      { status: 201, body: { id: "a1", kind: "image", format: "png", width: 2, height: 1 } },
      { status: 201, body: { id: "i1", url: "http://m.test/?invite=i1", session: "s 1", role: "commenter", for: null, expires_at: 9, max_uses: null, uses: 0, revoked: false, created_by: "alice" } },
      { status: 200, body: { session: "s 1", role: "commenter" } },
      { status: 200, body: { invites: [] } },
      { status: 200, body: { id: "i1", revoked: true } },
    ]);
    const api = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: f });
    const bytes = new Uint8Array([137, 80, 78, 71]);
    expect(await api.uploadAsset(bytes, { session: "s 1" })).toEqual({ id: "a1", kind: "image", format: "png", width: 2, height: 1 });
    expect((await api.createInvite("s 1", { role: "commenter", max_uses: 5 })).id).toBe("i1");
    expect(await api.acceptInvite("i1")).toEqual({ session: "s 1", role: "commenter" });
    expect(await api.invites("s 1")).toEqual([]);
    await api.revokeInvite("i1");
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "POST http://m.test/v1/assets?session=s%201",
      "POST http://m.test/v1/sessions/s%201/invites",
      "POST http://m.test/v1/invites/i1/accept",
      "GET http://m.test/v1/sessions/s%201/invites",
      "DELETE http://m.test/v1/invites/i1",
    ]);
    expect(calls[0]!.body).toBe(bytes); // the bytes as they are
    expect(calls[0]!.headers["Content-Type"]).toBe("application/octet-stream");
    expect(JSON.parse(String(calls[1]!.body))).toEqual({ role: "commenter", max_uses: 5 });
  });

  it("seals an encrypted session's upload, and reads an asset's bytes back", async () => {
    const sealed: Uint8Array[] = [];
    const f: FetchLike = async (url, init) => {
      if (init.method === "POST") sealed.push(init.body as Uint8Array);
      const bytes = init.method === "GET" ? sealed[0]! : new Uint8Array(0);
      return {
        status: init.method === "POST" ? 201 : 200,
        ok: true,
        headers: { get: () => null },
        text: async () => (init.method === "POST" ? JSON.stringify({ id: "a1", kind: "sealed", format: "sealed", bytes: sealed[0]!.length }) : ""),
        arrayBuffer: async () => bytes.slice().buffer,
      };
    };
    const api = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: f });
    const keys = new Keyring(SessionKey.generate());
    const file = new Uint8Array([137, 80, 78, 71, 1, 2, 3]);
    expect(await api.uploadSealedAsset("s 1", keys, 0, file)).toEqual({ id: "a1", kind: "sealed", format: "sealed", bytes: 16 + 24 + 7 + 16 });
    expect(new TextDecoder().decode(sealed[0]!.subarray(0, 8))).toBe("MTGSEAL1");
    expect(await api.asset("a1")).toEqual(sealed[0]);
    expect(await api.openSealedAsset("a1", "s 1", keys)).toEqual(file);
    await expect(api.openSealedAsset("a1", "s 2", keys)).rejects.toMatchObject({ name: "SealError", kind: "tampered" });
    await expect(api.uploadSealedAsset("s 1", keys, 1, file)).rejects.toMatchObject({ kind: "no_key" });
    // A fetch without arrayBuffer() can't read bytes: said, not guessed from text.
    const { f: textOnly } = fakeFetch([{ status: 200, body: "\u0089PNG" }, { status: 404, body: { type: "error", code: "not_found", message: "no asset a2" } }]);
    const plain = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: textOnly });
    await expect(plain.asset("a1")).rejects.toThrow("no arrayBuffer()");
    await expect(plain.asset("a2")).rejects.toMatchObject({ status: 404, code: "not_found", message: "no asset a2" });
  });

  it("reads the inbox and marks items read", async () => {
    const item = { id: "n1", kind: "role_changed", session: "s 1", actor: "ann", time: 1700000000000, read: false, role: "editor", count: 1 };
    const { f, calls } = fakeFetch([
      { status: 200, body: { notifications: [item] } },
      { status: 200, body: { notifications: [] } },
      { status: 200, body: { marked: 1 } },
      { status: 200, body: { marked: 4 } },
      { status: 200, body: { notifications: [{ kind: "award", session: "s" }] } },
      { status: 200, body: { nothing: 0 } },
    ]);
    const api = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: f });
    expect(await api.notifications()).toEqual([item]);
    expect(await api.notifications({ unread: true, before: 1700000000000, limit: 20 })).toEqual([]);
    expect(await api.markRead(["n1"])).toBe(1);
    expect(await api.markRead("all")).toBe(4);
    await expect(api.notifications({ unread: false })).rejects.toMatchObject({ code: "bad_response" });
    await expect(api.markRead([])).rejects.toMatchObject({ code: "bad_response" });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET http://m.test/v1/notifications",
      "GET http://m.test/v1/notifications?unread=true&before=1700000000000&limit=20",
      "POST http://m.test/v1/notifications/read",
      "POST http://m.test/v1/notifications/read",
      "GET http://m.test/v1/notifications",
      "POST http://m.test/v1/notifications/read",
    ]);
    expect(JSON.parse(String(calls[2]!.body))).toEqual({ ids: ["n1"] });
    expect(JSON.parse(String(calls[3]!.body))).toEqual({ all: true });
    expect(calls[2]!.headers["Authorization"]).toBe("Bearer t");
  });

  it("reads a user's recognition and the showcase", async () => {
    const badge = { id: "b", session: "s", user: "bo b", type: "achievement_badge", badge: "first_edit", awarded_by: null, at: 1 };
    const entry = { award: "community_spotlight:s:bob", type: "community_spotlight", session: "s", title: null, user: "bob", awarded_by: "ann", version: 3, at: 2, preview_url: "http://m.test/v1/showcase/s/3/preview" };
    const { f, calls } = fakeFetch([
      { status: 200, body: { user: "bo b", badges: [badge], awards: [] } },
      { status: 200, body: { showcase: [entry] } },
      { status: 200, body: { showcase: [] } },
      { status: 200, body: { user: "x" } },
    ]);
    const api = new SessionsApi({ baseUrl: "http://m.test", token: "t", fetch: f });
    expect(await api.recognition("bo b")).toEqual({ user: "bo b", badges: [badge], awards: [] });
    expect(await api.showcase()).toEqual([entry]);
    expect(await api.showcase({ before: 2, limit: 10 })).toEqual([]);
    await expect(api.recognition("x")).rejects.toMatchObject({ code: "bad_response" });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET http://m.test/v1/users/bo%20b/recognition",
      "GET http://m.test/v1/showcase",
      "GET http://m.test/v1/showcase?before=2&limit=10",
      "GET http://m.test/v1/users/x/recognition",
    ]);
  });

  it("uses the global fetch as a plain function (a browser's refuses another `this`)", async () => {
    const saved = globalThis.fetch;
    const seen: unknown[] = [];
    globalThis.fetch = function (this: unknown, url: string) {
      if (this !== undefined && this !== globalThis) throw new TypeError("Illegal invocation");
      seen.push(url);
      return Promise.resolve(new Response(JSON.stringify({ sessions: [] }), { status: 200 }));
    } as typeof fetch;
    try {
      expect(await new SessionsApi({ token: "t" }).list()).toEqual([]);
      expect(seen).toEqual(["/v1/sessions"]);
    } finally {
      globalThis.fetch = saved;
    }
  });

  it("refusals are ApiErrors with the server's code and message", async () => {
    const { f } = fakeFetch([
      { status: 403, body: { type: "error", code: "forbidden", message: "only the owner" } },
      { status: 429, body: { type: "error", code: "rate_limited", message: "slow down" }, headers: { "retry-after": "2" } },
      { status: 502, body: "<html>bad gateway</html>" },
      { status: 200, body: { nope: true } },
    ]);
    const api = new SessionsApi({ token: "t", fetch: f });
    const e1 = await api.delete("x").catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect(e1).toMatchObject({ status: 403, code: "forbidden", message: "only the owner", accessDenied: true });
    await expect(api.list()).rejects.toMatchObject({ status: 429, code: "rate_limited", retryAfterMs: 2000 });
    await expect(api.list()).rejects.toMatchObject({ status: 502, code: "http_error", message: expect.stringContaining("bad gateway") });
    await expect(api.list()).rejects.toMatchObject({ code: "bad_response" });
  });
});
