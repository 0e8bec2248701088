//! Connection tiers (DESIGN §7): how large and how often previews are sent.

use std::time::{Duration, Instant};

use crate::render::Size;

pub use montage_protocol::Tier;

/// The box a tier's previews must fit in (a 320×320 box for the thumbnail): the media side of
/// [`Tier`], which the wire defines.
pub trait TierBox {
    fn max_size(self) -> Size;
}

impl TierBox for Tier {
    fn max_size(self) -> Size {
        match self {
            Tier::Excellent => Size::new(1920, 1080),
            Tier::Good => Size::new(1280, 720),
            Tier::Fair => Size::new(854, 480),
            Tier::Poor => Size::new(320, 320),
        }
    }
}

/// The preview size for a canvas at a tier: the canvas scaled to fit the tier's box (the box as
/// written, landscape, so a preview is never larger than the tier's resolution in either
/// direction), aspect kept (to the nearest pixel; a side within one pixel of the box is the box),
/// never larger than the canvas itself, at least 1×1.
pub fn preview_size(canvas_w: u32, canvas_h: u32, tier: Tier) -> Size {
    let (cw, ch) = (f64::from(canvas_w.max(1)), f64::from(canvas_h.max(1)));
    let max = tier.max_size();
    let scale = (f64::from(max.width) / cw)
        .min(f64::from(max.height) / ch)
        .min(1.0);
    // A side within a pixel of the box takes the box's size: 16:9 at fair is 854×480, the
    // table's figure, rather than the nearest 853.3.
    let side = |c: f64, m: u32| {
        let s = c * scale;
        let s = if (f64::from(m) - s).abs() < 1.0 {
            f64::from(m)
        } else {
            s.round()
        };
        (s as u32).clamp(1, m)
    };
    Size::new(side(cw, max.width), side(ch, max.height))
}

/// Paces previews to one participant at its tier's frame rate. Time comes in as an argument, so
/// it is tested without a clock; the caller keeps only the newest pending preview (latest wins).
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    last: Option<Instant>,
}

impl Pacer {
    pub fn new() -> Self {
        Self::default()
    }
    /// `Ok(())` (and the send is recorded) if a preview may go out at `now`; else how long to wait.
    pub fn try_send(&mut self, now: Instant, tier: Tier) -> Result<(), Duration> {
        if let Some(last) = self.last {
            let due = last + tier.min_interval();
            if now < due {
                return Err(due - now);
            }
        }
        self.last = Some(now);
        Ok(())
    }
}
