/**
 * The project's own lint rules, loaded by `deno lint` for the two folders
 * they judge (`lint.plugins` of `experiment/deno.json` and
 * `examples/deno.json`, not the root's: a plugin makes Deno serialise the
 * AST of every file it lints, which made `deno lint` 4× slower over the
 * whole workspace, and Deno 2.9.6's linter with a plugin crashed with
 * SIGSEGV in 1 of about 200 runs here under load, none in 180 without).
 *
 * `toolkit/max-function-lines`: no function in `experiment/` or `examples/`
 * (test files aside) is longer than {@linkcode MAX_FUNCTION_LINES} lines,
 * from the line it starts on to the line it ends on (issue 21: the framework
 * and the scripts over it read as small functions). Function declarations,
 * function expressions, arrow functions and methods count; a function nested
 * in another counts on its own, and its lines count toward the outer one too.
 *
 * @module
 */

/** The most lines a function may span. */
export const MAX_FUNCTION_LINES = 80;

/** The repository's root, to judge a file by its path inside it. */
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** Test files: `x_test.ts`, `x.test.ts`, `test.ts`. */
const TEST_FILE = /(^|\/)(\w[\w.-]*[_.])?test\.[cm]?tsx?$/;

/**
 * Whether the rule applies to a file: a non-test TypeScript file in an
 * `experiment/` or `examples/` folder (of the repository, when the path is
 * inside it).
 *
 * @param filename The file's path, absolute or relative.
 * @returns Whether its functions are measured.
 */
export function appliesTo(filename: string): boolean {
  let path = filename.replaceAll("\\", "/");
  if (path.startsWith(ROOT)) path = path.slice(ROOT.length);
  return /\.[cm]?tsx?$/.test(path) && !TEST_FILE.test(path) &&
    /(^|\/)(experiment|examples)\//.test(path);
}

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/**
 * What is measured for a function: a method from its name (the method
 * definition or object-literal property holding it), any other from its
 * start.
 */
function measured(node: FunctionNode): Deno.lint.Node {
  const p = node.parent;
  if (
    node.type === "FunctionExpression" &&
    (p.type === "MethodDefinition" ||
      (p.type === "Property" && (p.method || p.kind !== "init")))
  ) {
    return p;
  }
  return node;
}

/** A function's name for the message, when it has one. */
function nameOf(node: FunctionNode, at: Deno.lint.Node): string {
  if (node.id) return `${node.id.name} `;
  const key = at.type === "MethodDefinition" || at.type === "Property"
    ? at.key
    : node.parent.type === "VariableDeclarator"
    ? node.parent.id
    : undefined;
  return key?.type === "Identifier" ? `${key.name} ` : "";
}

const maxFunctionLines: Deno.lint.Rule = {
  create(context) {
    if (!appliesTo(context.filename)) return {};
    const text = context.sourceCode.text;
    const check = (node: FunctionNode) => {
      const at = measured(node);
      const [start, end] = at.range;
      let lines = 1;
      for (let i = text.indexOf("\n", start); i !== -1 && i < end;) {
        lines++;
        i = text.indexOf("\n", i + 1);
      }
      if (lines <= MAX_FUNCTION_LINES) return;
      context.report({
        node: at,
        message: `Function ${
          nameOf(node, at)
        }spans ${lines} lines; at most ${MAX_FUNCTION_LINES} in experiment/ and examples/`,
        hint:
          "Split it at its natural seams into well-named functions (issue 21)",
      });
    };
    return {
      FunctionDeclaration: check,
      FunctionExpression: check,
      ArrowFunctionExpression: check,
    };
  },
};

/** The plugin: `toolkit/max-function-lines`. */
const plugin: Deno.lint.Plugin = {
  // Letters and hyphens only (deno lint refuses "d3pm").
  name: "toolkit",
  rules: { "max-function-lines": maxFunctionLines },
};

export default plugin;
