import { assertEquals } from "@std/assert";
import plugin, { appliesTo } from "./lint_plugin.ts";

const RULE = "toolkit/max-function-lines";

/** A function declaration spanning `lines` lines, from `function` to `}`. */
function longFunction(lines: number, name = "long"): string {
  return `export function ${name}(): number {\n  let x = 0;\n${
    "  x++;\n".repeat(lines - 4)
  }  return x;\n}\n`;
}

/** The lines the rule reports, with the line each report starts on. */
function reports(fileName: string, source: string): string[] {
  return Deno.lint.runPlugin(plugin, fileName, source)
    .filter((d) => d.id === RULE)
    .map((d) => {
      const line = source.slice(0, d.range[0]).split("\n").length;
      return `${line}: ${d.message}`;
    });
}

Deno.test("max-function-lines reports an 81-line function in experiment/ and examples/, not an 80-line one", () => {
  assertEquals(longFunction(81).trimEnd().split("\n").length, 81);
  assertEquals(reports("experiment/x.ts", longFunction(81)), [
    "1: Function long spans 81 lines; at most 80 in experiment/ and examples/",
  ]);
  assertEquals(reports("/repo/examples/x.ts", longFunction(81)).length, 1);
  assertEquals(reports("experiment/x.ts", longFunction(80)), []);
});

Deno.test("max-function-lines leaves other folders and test files alone", () => {
  assertEquals(reports("cpu/x.ts", longFunction(81)), []);
  assertEquals(reports("experiment/x_test.ts", longFunction(81)), []);
  assertEquals(reports("examples/x.test.ts", longFunction(81)), []);
  assertEquals(appliesTo("/repo/experiment/studies/epochs.ts"), true);
  assertEquals(appliesTo("/repo/tests/experiment_test.ts"), false);
  assertEquals(appliesTo("/repo/experiment/README.md"), false);
});

Deno.test("max-function-lines measures arrows, methods and nested functions, each on its own and within the outer", () => {
  const body = "    x++;\n".repeat(78);
  // An 81-line arrow inside a function: both are reported.
  const nested =
    `function outer() {\n  const inner = () => {\n    let x = 0;\n${
      body.slice(0, -"    x++;\n".length)
    }    return x;\n  };\n  return inner;\n}\n`;
  assertEquals(reports("experiment/x.ts", nested), [
    "1: Function outer spans 84 lines; at most 80 in experiment/ and examples/",
    "2: Function inner spans 81 lines; at most 80 in experiment/ and examples/",
  ]);
  // A method counts from its name; an 80-line one passes.
  const method = (lines: number) =>
    `class A {\n  run(): number {\n    let x = 0;\n${
      "    x++;\n".repeat(lines - 4)
    }    return x;\n  }\n}\n`;
  assertEquals(reports("examples/x.ts", method(81)), [
    "2: Function run spans 81 lines; at most 80 in experiment/ and examples/",
  ]);
  assertEquals(reports("examples/x.ts", method(80)), []);
});
