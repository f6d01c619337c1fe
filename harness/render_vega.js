// Draws a filled vega-lite spec (as `dvc plots show --json` gives it) with the vega-lite and vega
// that package.json pins, headless, with DVC's "show values" box ticked; prints the text marks as
// JSON lines: {"datum": {...}, "text": "..."}. Usage: node render_vega.js SPEC.json
const fs = require("fs");
const vega = require("vega");
const vegaLite = require("vega-lite");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" });
if (spec.params && spec.params.some((param) => param.name === "showValues")) view.signal("showValues", true);

function texts(node, out) {
  for (const item of node.items || []) {
    if (node.marktype === "text" && item.text !== undefined && item.text !== "") {
      out.push({ datum: item.datum, text: String(item.text) });
    }
    texts(item, out);
  }
  return out;
}

view.runAsync().then(() => {
  for (const mark of texts(view.scenegraph().root, [])) console.log(JSON.stringify(mark));
});
