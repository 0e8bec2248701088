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
  textChange,
  textDelete,
  textInsert,
} from "./component.js";
export { checkDocument } from "./schema.js";
export { type PictureInfo, PICTURE_LIMITS, pictureInfo, pictureRefusal } from "./picture.js";
export { diff, diffUnder, findElement, restoreElement } from "./diff.js";
export { type Side, MIN_CLIP_LENGTH, flip } from "./transform.js";
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
export { SyncDoc, type SyncSnapshot, type Outgoing, type EditKind, type Caret, type SealedEdit, transformCaret, undoInverse } from "./sync.js";
export {
  type Binding,
  type SealErrorKind,
  type SealedCommentBody,
  ASSET_HEADER_LEN,
  ASSET_MAGIC,
  ASSET_MIN_LEN,
  COMMENT_PREFIX,
  GENESIS_CHAIN,
  Keyring,
  SealError,
  SessionKey,
  assetEpoch,
  associatedData,
  chainHex,
  chainNext,
  isBase64,
  open,
  openAsset,
  openComment,
  parseChain,
  seal,
  sealAsset,
  sealComment,
} from "./sealed.js";
export { MontageClient, type ClientEvents, type ClientOptions } from "./client.js";
export {
  MontageConnection,
  httpOrigin,
  type BinaryCodec,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectionStatus,
  type SocketConstructor,
  type SocketFactory,
  type SocketLike,
  type Timers,
  type TokenSource,
} from "./connection.js";
export {
  MontageSession,
  type ChangeEvent,
  type ChangeOrigin,
  type ClientStorage,
  type Participant,
  type SessionEvents,
  type SessionOptions,
  type StatusEvent,
} from "./session.js";
export {
  AuthError,
  BINARY_SUBPROTOCOL,
  CLOSE_UNAUTHORIZED,
  JSON_SUBPROTOCOL,
  ServerError,
  type Annotation,
  type Comment,
  type ErrorCode,
  type NewComment,
  type Notification,
  type NotificationKind,
  type PreviewEvent,
  type Region,
  type ServerErrorCode,
  type Suggestion,
  type TaskInfo,
  type Tier,
  type TierEvent,
  tierForMbps,
} from "./protocol.js";
export * as media from "./edits.js";
export { clipPath, layerPath, type AdjustParam, type DocLike } from "./edits.js";
export type { Asset, Clip, ImageLayer, Layer, MontageDocument, TextLayer, Track } from "./types.js";
export {
  type AccessReason,
  type AssetInfo,
  type FetchLike,
  type Invite,
  type RequestBody,
  type LinkRole,
  type Role,
  type SessionInfo,
  type SessionSummary,
  type SessionsApiOptions,
  type Version,
  type Award,
  type Recognition,
  type ShowcaseEntry,
  AccessError,
  ApiError,
  LINK_ROLES,
  SessionsApi,
  roleAtLeast,
  tokenClaims,
  tokenSubject,
} from "./access.js";
