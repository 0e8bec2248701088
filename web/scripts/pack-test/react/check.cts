// Strict types of the packed @montage/react against the packed @montage/client.
import { createElement, type ReactNode } from "react";
import { type ConnectionState, type Json, MontageClient } from "@montage/client";
import { MontageProvider, type Other, shallowEqual, useDoc, useMyPresence, useOthers, useStatus, useUndo } from "@montage/react";

type Doc = { title: string; meta: Record<string, Json> };
type Cursor = { x: number; y: number };

export function View(): ReactNode {
  const title: string | undefined = useDoc((d: Doc) => d.title);
  const keys: string[] | undefined = useDoc((d: Doc) => Object.keys(d.meta), shallowEqual);
  const others: readonly Other<Cursor>[] = useOthers<Cursor>();
  const [me, setMe] = useMyPresence<Cursor>();
  setMe((prev) => ({ x: (prev?.x ?? 0) + 1, y: 0 }));
  const { undo, canUndo } = useUndo();
  const state: ConnectionState = useStatus().state;
  // @ts-expect-error: presence is a Cursor
  setMe("nope");
  return `${title}${keys?.length}${others[0]?.presence?.x}${me?.y}${canUndo}${undo()}${state}`;
}
const client = new MontageClient({ url: "ws://x/v1/ws", session: "s", autoConnect: false });
export const a = createElement(MontageProvider, { client }, createElement(View));
export const b = createElement(MontageProvider, { options: { url: "ws://x/v1/ws", session: "s" } });
// @ts-expect-error: a client or options, not neither
export const c = createElement(MontageProvider, {});
