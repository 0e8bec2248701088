//! Seeded random documents: whatever the layers say, rendering returns an image of the target
//! size and never panics.

use montage_media::{Size, Tier, preview_size, render};
use montage_ot::Value;
use serde_json::{Value as J, json};

use crate::helpers::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn num(&mut self) -> J {
        match self.below(16) {
            0 => json!(0),
            1 => json!(-(self.below(1000) as f64)),
            2 => json!(1e12),
            3 => json!(-1e300),
            4 => json!((self.below(2000) as f64) / 7.0),
            5 => json!("12"),
            6 => J::Null,
            7 => json!(self.below(360) as f64 * 0.5),
            _ => json!(self.below(300)),
        }
    }
    fn layer(&mut self) -> J {
        if self.below(2) == 0 {
            // A well-formed layer with random but sane geometry.
            return json!({"id": "ok", "kind": "image", "asset": "a",
                "x": self.below(60), "y": self.below(40), "w": 1 + self.below(80), "h": 1 + self.below(80),
                "rotation": self.below(720) as f64 / 2.0, "opacity": 0.5 + self.below(50) as f64 / 100.0,
                "flip": {"h": self.below(2) == 0}, "adjust": {"brightness": self.below(100) as f64 / 100.0}});
        }
        let mut l = serde_json::Map::new();
        let kind = ["image", "image", "image", "text", "video", ""][self.below(6) as usize];
        l.insert("id".into(), json!(format!("l{}", self.below(100))));
        if self.below(10) > 0 {
            l.insert("kind".into(), json!(kind));
        }
        l.insert(
            "asset".into(),
            json!(["a", "b", "missing"][self.below(3) as usize]),
        );
        for k in ["x", "y", "w", "h", "rotation", "opacity", "size"] {
            if self.below(12) > 0 {
                l.insert(k.into(), self.num());
            }
        }
        if self.below(3) == 0 {
            l.insert(
                "crop".into(),
                json!({"x": self.num(), "y": self.num(), "w": self.num(), "h": self.num()}),
            );
        }
        if self.below(3) == 0 {
            l.insert(
                "flip".into(),
                json!({"h": self.below(2) == 0, "v": self.below(2) == 0}),
            );
        }
        if self.below(3) == 0 {
            l.insert(
                "adjust".into(),
                json!({"brightness": self.num(), "contrast": self.num(), "saturation": self.num(), "exposure": self.num()}),
            );
        }
        if kind == "text" {
            l.insert(
                "text".into(),
                json!(["", "Hi", "a\nb\nc", "ÅÉ漢字🙂"][self.below(4) as usize]),
            );
            l.insert(
                "color".into(),
                json!(["#fff", "#12345678", "red", "#"][self.below(4) as usize]),
            );
        }
        J::Object(l)
    }
}

#[test]
fn random_documents_always_render() {
    let a = assets(&[("a", photo(37, 23)), ("b", solid(5, 90, [10, 20, 30, 128]))]);
    let mut rng = Rng(0x6d6f_6e74_6167_6521);
    let (mut inked, mut warned) = (0, 0);
    for round in 0..300 {
        let n = rng.below(6);
        let layers: Vec<J> = (0..n).map(|_| rng.layer()).collect();
        let cw = [0u64, 1, 64, 64, 300, 5000][rng.below(6) as usize];
        let ch = [0u64, 1, 48, 48, 200, 7000][rng.below(6) as usize];
        let d = Value::from_json(&json!({"canvas": {"width": cw, "height": ch, "layers": layers}}));
        let tier = Tier::ALL[rng.below(4) as usize];
        let size = preview_size(cw as u32, ch as u32, tier);
        // Small targets keep the debug-build test quick; the size logic is tested elsewhere.
        let size = Size::new(size.width.min(96), size.height.min(96));
        let r = render(&d, &a, size).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(
            r.image.dimensions(),
            (size.width, size.height),
            "round {round}"
        );
        inked += usize::from(r.image.pixels().any(|p| p.0[3] > 0));

        warned += usize::from(!r.warnings.is_empty());
    }
    // The generator reaches both drawable and refused layers.
    assert!(inked > 30 && warned > 30, "inked {inked}, warned {warned}");
}
