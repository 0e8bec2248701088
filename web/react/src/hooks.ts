/**
 * `MontageProvider` and the hooks. Every hook reads one slice of a `ClientStore` through
 * `useSyncExternalStore`, so a component re-renders only when its slice changes (for `useDoc`:
 * when what its selector picks changes), and never tears during concurrent rendering.
 */
import {
  type ReactNode,
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { type ClientOptions, type Json, MontageClient, type MontageSession } from "@montage/client";
import { ClientStore, type Other, type SessionState, type Status } from "./store.js";

// Untyped here: each hook takes the document and presence types from its caller.
type AnyStore = ClientStore<any, any>;
const StoreContext = createContext<AnyStore | null>(null);

/**
 * The props of {@link MontageProvider}: a `client` the app owns, or `options` for one the provider
 * makes and owns; and the components that use it.
 */
export type MontageProviderProps = { children?: ReactNode } & (
  | {
      /** A client the app made and owns (a `MontageClient`, or a session of a
       * `MontageConnection`): the provider neither connects nor disconnects it. */
      client: MontageSession<any, any>;
      options?: undefined;
    }
  | {
      /**
       * Options for a `MontageClient` the provider makes on mount, connects in an effect
       * (unless `autoConnect` is false) and leaves and disconnects on unmount. Read once: to
       * open another session, mount a new provider (e.g. `key={session}`).
       */
      options: ClientOptions;
      client?: undefined;
    }
);

/** Gives the components below it one Montage session. */
export function MontageProvider(props: MontageProviderProps): ReactNode {
  // Made with autoConnect off and connected in the effect: rendering has no side effects, and
  // StrictMode's mount–unmount–mount ends connected.
  const [owned] = useState(() =>
    props.client === undefined ? new MontageClient({ ...props.options, autoConnect: false }) : null,
  );
  const autoConnect = props.options?.autoConnect !== false;
  useEffect(() => {
    if (owned === null || !autoConnect) return;
    owned.connect();
    return () => owned.leave();
  }, [owned, autoConnect]);
  const client = props.client ?? owned;
  if (client === null) throw new Error("MontageProvider: pass `client` or `options` (and keep the choice)");
  const store = useMemo(() => new ClientStore(client), [client]);
  return createElement(StoreContext.Provider, { value: store }, props.children);
}

function useStore(): AnyStore {
  const store = useContext(StoreContext);
  if (store === null) throw new Error("Montage hooks must be used inside <MontageProvider>");
  return store;
}

/** The session's client (the `MontageClient` or `MontageSession` given to the provider, or the
 * one it made): `submit` edits, `on` for events the hooks don't cover. `Doc` and `Presence`
 * are yours to declare, as for `MontageClient<Doc, Presence>`. */
export function useClient<Doc = Json, Presence = Json>(): MontageSession<Doc, Presence> {
  return useStore().client as MontageSession<Doc, Presence>;
}

/** Who I am in the session: session id, user, role, link role, title, and why I'm out of it
 * (`accessError`, or `authError` when the token was refused) when I am. */
export function useSession(): SessionState {
  const s = useStore();
  return useSyncExternalStore(s.subscribeSession, s.getSession, s.getSession);
}

/**
 * A value picked from the document by `selector`; undefined until the session is joined. The
 * component re-renders when the picked value changes (`isEqual`, `Object.is` by default: pass
 * `shallowEqual` for a selector that builds a new array or object). The document type `D` is
 * yours to declare (e.g. `MontageDocument`); the hook does not check it.
 */
export function useDoc<D = Json, T = D>(
  selector: (doc: D) => T,
  isEqual: (a: T, b: T) => boolean = Object.is,
): T | undefined {
  const s = useStore();
  const memo = useRef<{ doc: unknown; selector: (doc: D) => T; value: T } | null>(null);
  const get = (): T | undefined => {
    const doc = s.getDoc();
    if (doc === null) return undefined;
    const m = memo.current;
    // React calls this several times per render and after each change: the same document and
    // selector give the same answer without running the selector again.
    if (m !== null && m.doc === doc && m.selector === selector) return m.value;
    const picked = selector(doc);
    const value = m !== null && isEqual(m.value, picked) ? m.value : picked;
    memo.current = { doc, selector, value };
    return value;
  };
  return useSyncExternalStore(s.subscribeDoc, get, get);
}

/** The other users online in the session with their presence (`P`: its type, yours to
 * declare), me excluded. */
export function useOthers<P = Json>(): readonly Other<P>[] {
  const s = useStore();
  return useSyncExternalStore(s.subscribeOthers, s.getOthers, s.getOthers) as readonly Other<P>[];
}

/** My presence and its setter (a value, or a function of the previous value). The latest value
 * is sent again after a reconnect. */
export function useMyPresence<P = Json>(): [P | undefined, (next: P | ((prev: P | undefined) => P)) => void] {
  const s = useStore();
  const value = useSyncExternalStore(s.subscribeMyPresence, s.getMyPresence, s.getMyPresence) as P | undefined;
  const set = useCallback(
    (next: P | ((prev: P | undefined) => P)) => {
      const v = typeof next === "function" ? (next as (prev: P | undefined) => P)(s.getMyPresence() as P | undefined) : next;
      s.setMyPresence(v);
    },
    [s],
  );
  return [value, set];
}

/** The connection: `state` (connecting, online, reconnecting, offline, unauthorized) and `pending`
 * edits. */
export function useStatus(): Status {
  const s = useStore();
  return useSyncExternalStore(s.subscribeStatus, s.getStatus, s.getStatus);
}

/** What {@link useUndo} gives: per-user undo and redo, and whether each is possible now. */
export interface Undo {
  /** Undoes my latest edit (others' stay); false when there is nothing to undo. */
  undo: () => boolean;
  /** Makes my latest undone edit again; false when there is nothing to redo. */
  redo: () => boolean;
  canUndo: boolean;
  canRedo: boolean;
}

/** Per-user undo/redo and whether each is possible now. */
export function useUndo(): Undo {
  const s = useStore();
  const { canUndo, canRedo } = useSyncExternalStore(s.subscribeUndo, s.getUndo, s.getUndo);
  // The client throws when asked before the first join; there is nothing to undo then.
  const undo = useCallback(() => s.client.canUndo && s.client.undo(), [s]);
  const redo = useCallback(() => s.client.canRedo && s.client.redo(), [s]);
  return useMemo(() => ({ undo, redo, canUndo, canRedo }), [undo, redo, canUndo, canRedo]);
}

/** Equal arrays (same items) or plain objects (same own keys and values), compared one level
 * deep with `Object.is`: for `useDoc` selectors that build a new array or object. */
export function shallowEqual<T>(a: T, b: T): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!Object.is((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

export type { Other, SessionState, Status };
