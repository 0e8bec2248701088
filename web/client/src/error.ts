import { type Path, showPath } from "./path.js";

/**
 * What went wrong, as the Rust engine's `OtError` variants name it: a missing path, a value of the
 * wrong type, an index or text range out of bounds, an invalid component, a document that would
 * break its shape (docs/PROTOCOL.md "The document"), or a malformed wire form.
 */
export type OtErrorKind =
  | "no_such_path"
  | "wrong_type"
  | "out_of_bounds"
  | "text_out_of_bounds"
  | "invalid"
  | "schema"
  | "decode";

/** Why an edit could not be applied or decoded (the Rust `OtError`). */
export class OtError extends Error {
  readonly kind: OtErrorKind;
  readonly path: Path | undefined;
  constructor(kind: OtErrorKind, message: string, path?: Path) {
    super(message);
    this.name = "OtError";
    this.kind = kind;
    this.path = path;
  }
}

export const errors = {
  noSuchPath: (path: Path) => new OtError("no_such_path", `path ${showPath(path)} does not exist`, path),
  wrongType: (path: Path, expected: string, found: string) =>
    new OtError("wrong_type", `path ${showPath(path)}: expected ${expected}, found ${found}`, path),
  outOfBounds: (path: Path, index: number, len: number) =>
    new OtError("out_of_bounds", `path ${showPath(path)}: index ${index} out of bounds (length ${len})`, path),
  textOutOfBounds: (path: Path, pos: number, end: number, len: number) =>
    new OtError(
      "text_out_of_bounds",
      `path ${showPath(path)}: text range ${pos}..${end} out of bounds (length ${len})`,
      path,
    ),
  invalid: (path: Path, reason: string) => new OtError("invalid", `path ${showPath(path)}: ${reason}`, path),
  schema: (path: Path, reason: string) =>
    new OtError("schema", `the document would break its shape at ${showPath(path)}: ${reason}`, path),
  decode: (reason: string) => new OtError("decode", `malformed component: ${reason}`),
};
