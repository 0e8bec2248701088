export {
  MontageProvider,
  type MontageProviderProps,
  type Undo,
  shallowEqual,
  useClient,
  useDoc,
  useMyPresence,
  useOthers,
  useSession,
  useStatus,
  useUndo,
} from "./hooks.js";
export { ClientStore, type Other, type SessionState, type Status, type UndoState } from "./store.js";
