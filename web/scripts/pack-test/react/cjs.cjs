// A CommonJS app rendering with the packed @montage/react (on the server: no socket opens).
const assert = require("node:assert/strict");
const { createElement: h } = require("react");
const { renderToString } = require("react-dom/server");
const { MontageClient } = require("@montage/client");
const { ClientStore, MontageProvider, useDoc, useOthers, useStatus } = require("@montage/react");

const socket = () => assert.fail("rendering must not connect");
const client = new MontageClient({ url: "ws://127.0.0.1:9/v1/ws", token: "t", session: "s", socket, autoConnect: false });
function View() {
  const title = useDoc((d) => d.title);
  return h("p", null, `${useStatus().state}:${title ?? "none"}:${useOthers().length}`);
}
assert.equal(renderToString(h(MontageProvider, { client }, h(View))), "<p>offline:none:0</p>");
assert.equal(renderToString(h(MontageProvider, { options: { url: "ws://x/v1/ws", session: "s", socket } }, h(View))), "<p>offline:none:0</p>");
// One @montage/client: the store wraps the very client the app made.
assert.equal(new ClientStore(client).client, client);
assert.match(require.resolve("@montage/react"), /\/dist\/cjs\/index\.js$/);
console.log("react cjs ok");
