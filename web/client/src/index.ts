export * from "./json.js";
export * from "./path.js";
export { OtError, type OtErrorKind } from "./error.js";
export * from "./unicode.js";
export { TextOp, type TextPart, type TextStep } from "./text.js";
export {
  type Component,
  type Op,
  type Rect,
  type WireComponent,
  MAX_COMPONENTS,
  MAX_INDEX,
  MAX_PATH_DEPTH,
  add,
  decodeComponent,
  decodeOp,
  del,
  encodeOp,
  ins,
  isNoop,
  mov,
  set,
  textDelete,
  textInsert,
} from "./component.js";
export { checkDocument } from "./schema.js";
export { type Side, flip } from "./transform.js";
export {
  type Applied,
  apply,
  applyUnchecked,
  compose,
  composeAll,
  invert,
  isNoopOp,
  pushMerged,
  transform,
  transformX,
} from "./op.js";
export { SyncDoc, type SyncSnapshot, type Outgoing, type EditKind, type Caret, transformCaret, undoInverse } from "./sync.js";
export {
  MontageClient,
  type ClientEvents,
  type ClientStorage,
  type ClientOptions,
  type ConnectionState,
  type Participant,
  type SocketFactory,
  type SocketLike,
  type StatusEvent,
  type Timers,
} from "./client.js";
export type { Asset, Clip, ImageLayer, Layer, MontageDocument, TextLayer, Track } from "./types.js";
export {
  type AccessReason,
  type FetchLike,
  type LinkRole,
  type Role,
  type SessionInfo,
  type SessionSummary,
  type SessionsApiOptions,
  AccessError,
  ApiError,
  LINK_ROLES,
  SessionsApi,
  roleAtLeast,
  tokenClaims,
  tokenSubject,
} from "./access.js";
