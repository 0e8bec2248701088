#!/usr/bin/env python3
"""Writes traces/slider-drag.json: a synthetic slider drag, the shape of what the editor sends.

Not a human recording: 60 pointer events a second for 10 s, a person dragging the brightness
slider of layer 0 up with an ease-in-out curve, overshooting a little, settling, then nudging
contrast. Values are rounded as a slider's step (0.001) would. Deterministic (fixed seed).
"""
import json, math, random

random.seed(20261125)
events = []
t = 0.0
for i in range(600):
    x = i / 599
    ease = 0.5 - 0.5 * math.cos(math.pi * x)
    v = 0.62 * ease + 0.04 * math.sin(9 * x) * (1 - x) + random.uniform(-0.003, 0.003)
    v = max(-1.0, min(1.0, round(v, 3)))
    events.append({"time_ms": round(t), "ops": [
        {"op": "adjust", "path": ["canvas", "layers", 0], "param": "brightness", "value": v}]})
    t += 1000 / 60
for i in range(60):
    v = round(0.1 * i / 59, 3)
    events.append({"time_ms": round(t), "ops": [
        {"op": "adjust", "path": ["canvas", "layers", 0], "param": "contrast", "value": v}]})
    t += 1000 / 60
json.dump({"kind": "ops", "description": __doc__.strip().splitlines()[0], "events": events},
          open("traces/slider-drag.json", "w"), separators=(",", ":"))
