// The names the docs' snippets take from the app around them (check-snippets.mjs checks every
// block with these in scope). Typed as an app would have them, so a snippet passing the wrong
// thing still fails; a block's own declarations shadow these.
import type { AccessReason, ConnectionState, Json, MontageClient, MontageDocument, Op, Participant } from "@montage/client";
import type { JSX } from "react";

type Cursor = { cursor: { x: number; y: number } | null };

declare global {
  /** The app's backend, which mints a Montage token for the signed-in user. */
  const myBackend: { freshToken(): Promise<string> };
  const url: string;
  const session: string;
  const token: string;
  function getToken(): Promise<string>;
  /** The client made in web/client/README.md's first example, used by the examples after it. */
  const client: MontageClient<MontageDocument, Cursor>;
  // The OT engine's examples: a document, an edit in wire form, two concurrent edits.
  const state: Json;
  const wireOps: unknown;
  const a: Op;
  const b: Op;
  const canvas: HTMLCanvasElement;
  const undoButton: HTMLButtonElement;
  function render(doc: MontageDocument): void;
  function showConnection(state: ConnectionState, pending: number): void;
  function showPeople(people: Participant[]): void;
  function drawCursor(user: string, data: Cursor): void;
  function showNoAccess(reason: AccessReason): void;
  function showLinkAccess(role: string): void;
  function signInAgain(reason: string): void;
  // web/react/README.md: the component the provider example renders, and a cursor.
  function Canvas(): JSX.Element;
  function Pointer(props: { at: { x: number; y: number }; color?: string | undefined; label: string }): JSX.Element;
}
