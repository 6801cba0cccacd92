import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import {
  applyMutant,
  backupPath,
  codeMask,
  commandRunner,
  findMutants,
  mutateFile,
  type Result,
} from "./mutate.ts";

const TOOL = fromFileUrl(new URL("./mutate.ts", import.meta.url));
const DENO = Deno.execPath();

// The fixture: the test checks the sum, not the clamp, so `Math.min → Math.max`
// and `+ → -` are killed and the two changes to the clamp's 10 survive.
const MOD = `/** Fixture. */
export function clampAdd(a: number, b: number): number {
  // a + b is clamped at 10; "a - b" and \`\${a * b}\` are not code
  return Math.min(a + b, 10);
}
`;
const CHECK = `import { clampAdd } from "./mod.ts";
if (clampAdd(2, 3) !== 5) Deno.exit(1);
`;

async function fixture(check = CHECK): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mutate_test_" });
  await Deno.writeTextFile(`${dir}/mod.ts`, MOD);
  await Deno.writeTextFile(`${dir}/check.ts`, check);
  return dir;
}

async function tool(args: string[]) {
  const out = await new Deno.Command(DENO, {
    args: ["run", "-A", TOOL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function assertRestored(dir: string): Promise<void> {
  assertEquals(await Deno.readTextFile(`${dir}/mod.ts`), MOD);
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(left, ["check.ts", "mod.ts"], "a backup was left behind");
}

Deno.test("findMutants plants only in code, only binary (spaced) operators", () => {
  const src = [
    "const re = /a+b/g; // x + 1",
    'const s = "a - b" + `${c * 2}`;',
    "function f<T>(x: Array<T>): T { return x[0]; }",
    "const y = -a * b / c, z = x <= 1 ? Math.max(p, q) : t.add(u).log();",
  ].join("\n");
  const got = findMutants(src).map((m) =>
    `${m.line}:${m.col} ${m.from}→${m.to}`
  );
  assertEquals(got, [
    "2:19 +→-",
    "3:42 0→1",
    "4:11 -→",
    "4:14 *→/",
    "4:18 /→*",
    "4:29 <=→<",
    "4:32 1→2",
    "4:32 1→0",
    "4:36 Math.max→Math.min",
    "4:54 .add→.sub",
    "4:61 .log→.log1p",
  ]);
  const m = findMutants("x = 0.5 * y;", ["literal"])[0];
  assertEquals(applyMutant("x = 0.5 * y;", m), "x = 0.55 * y;");
});

Deno.test("the tool kills two of the fixture's mutants, two survive, and the file is restored", async () => {
  const dir = await fixture();
  try {
    const r = await tool([
      "--file",
      `${dir}/mod.ts`,
      "--",
      DENO,
      "run",
      `${dir}/check.ts`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const results = lines.slice(0, -1) as Result[];
    assertEquals(
      results.map((x) => [x.line, x.col, x.mutant, x.killed]),
      [
        [4, 10, "Math.min → Math.max", true],
        [4, 21, "+ → -", true],
        [4, 26, "10 → 11", false],
        [4, 26, "10 → 9", false],
      ],
    );
    const s = lines.at(-1);
    assertEquals([s.summary, s.planted, s.killed, s.survived], [
      true,
      4,
      2,
      2,
    ]);
    await assertRestored(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mutateFile restores the file and removes its backup when the runner throws", async () => {
  const dir = await fixture();
  try {
    const file = `${dir}/mod.ts`;
    let calls = 0;
    await assertRejects(
      () =>
        mutateFile(file, findMutants(MOD), () => {
          calls++;
          assert(Deno.readTextFileSync(file) !== MOD, "no mutant planted");
          if (calls === 2) throw new Error("runner broke");
          return Promise.resolve({ passed: true, timeout: false });
        }, 1000),
      Error,
      "runner broke",
    );
    assertEquals(calls, 2);
    await assertRestored(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGINT mid-mutant stops the tool (exit 130) and restores the file", async () => {
  // The check sleeps 5 s once a mutant is planted, so SIGINT lands mid-run.
  const dir = await fixture(
    `const src = await Deno.readTextFile(new URL("./mod.ts", import.meta.url));
if (!src.includes("Math.min(a + b, 10)")) await new Promise((r) => setTimeout(r, 5_000));
`,
  );
  try {
    const p = new Deno.Command(DENO, {
      args: [
        "run",
        "-A",
        TOOL,
        "--file",
        `${dir}/mod.ts`,
        "--timeout",
        "120",
        "--",
        DENO,
        "run",
        "-A",
        `${dir}/check.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const t0 = Date.now();
    while (Deno.readTextFileSync(`${dir}/mod.ts`) === MOD) {
      assert(Date.now() - t0 < 60_000, "no mutant was planted in 60 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300)); // the check is running
    p.kill("SIGINT");
    const tSig = Date.now();
    const out = await p.output();
    assertEquals(out.code, 130, new TextDecoder().decode(out.stderr));
    // No further mutant is planted: each would take the check's 5 s.
    assert(Date.now() - tSig < 4_000, "the tool did not stop promptly");
    const results = new TextDecoder().decode(out.stdout).trim().split("\n")
      .filter((l) => l && !JSON.parse(l).summary);
    assert(results.length <= 1, `${results.length} mutants after SIGINT`);
    await assertRestored(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a backup left by a killed run stops the tool until --restore", async () => {
  const dir = await fixture();
  try {
    const file = `${dir}/mod.ts`;
    await Deno.writeTextFile(backupPath(file), MOD);
    await Deno.writeTextFile(file, applyMutant(MOD, findMutants(MOD)[0]));
    const r = await tool([
      "--file",
      file,
      "--",
      DENO,
      "run",
      `${dir}/check.ts`,
    ]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /^error: .*mutate-orig exists .*--restore\n$/);
    assertEquals((await tool(["--file", file, "--restore"])).code, 0);
    await assertRestored(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad input is one line of error, exit 2", async () => {
  const dir = await fixture();
  try {
    const f = `${dir}/mod.ts`;
    for (
      const [args, pattern] of [
        [
          ["--max", "0", "--file", f, "--list"],
          /Option --max must be a positive integer, got 0/,
        ],
        [["--file", f, "--ops", "arith,bogus", "--list"], /unknown class/],
        [["--file", f, "--lines", "9-3", "--list"], /bad range/],
        [
          ["--file", f, "--frobnicate"],
          /Unknown option --frobnicate: accepted options are --file,/,
        ],
        [["--file", f], /no test command/],
        [
          ["--file", f, "deno", "test"],
          /"deno": put the test command after --/,
        ],
        [["--file", `${dir}/none.ts`, "--list"], /cannot read/],
        [
          ["--file", f, "--", DENO, "eval", "Deno.exit(1)"],
          /fail with no mutant/,
        ],
      ] as [string[], RegExp][]
    ) {
      const r = await tool(args);
      assertEquals(r.code, 2, args.join(" "));
      assertMatch(r.stderr, /^error: [^\n]*\n$/);
      assertMatch(r.stderr, pattern);
    }
    await assertRestored(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The source with every non-code character (newlines kept) shown as `_`. */
function shown(src: string): string {
  const mask = codeMask(src);
  return [...src].map((c, k) => mask[k] || c === "\n" ? c : "_").join("");
}

Deno.test("codeMask keeps step past an apostrophe in a comment inside ${…}", () => {
  // data/wikitext.ts lost lines 345–751 to this: the old scan took the `'`
  // for a string's start and never found the template's end.
  const src = "const a = `x${f( // it's\n  y)}z`;\nconst b = c + d; // e\n";
  assertEquals(
    shown(src),
    "const a = ______________\n_______;\nconst b = c + d; ____\n",
  );
});

Deno.test("codeMask reads a regular expression with a quote inside ${…}", () => {
  // experiment/sweep.ts's shellQuote: `'${s.replace(/'/g, …)}'`.
  const src = "const q = `'${s.replace(/'/g, \"'\\\\''\")}'`;\n" +
    "x = a / b / c; // it's\n" +
    "p = `${/'/.test(s) ? 1 : 2}` / 2;\n";
  assertEquals(
    shown(src),
    "const q = _______________________________;\n" +
      "x = a / b / c; _______\n" +
      "p = ________________________ / 2;\n",
  );
});

Deno.test("codeMask follows nested templates and braces inside ${…}", () => {
  const src = "t = `a${`b${c}d`}e` + f;\n" +
    'u = `${g({ h: "}" })}${{ i: 1 }.i}` * j;\n' +
    'v = `${{ a: 1 }.a + "`"}` / k;\n';
  assertEquals(
    shown(src),
    "t = _______________ + f;\n" +
      "u = _______________________________ * j;\n" +
      "v = _____________________ / k;\n",
  );
});

Deno.test("codeMask tells division from a regular expression by the token before", () => {
  const src = [
    "x = a / b; y = (c) / 2; z = v[0] / 3; w = 4 / 2 / 1;",
    "r = /ab+c/.test(s) ? p : /[/]/g; q = f(/x\\/y/, 1);",
    "function k() { return /e/; } o.return / 2; typeof /t/;",
  ].join("\n");
  assertEquals(
    shown(src),
    [
      "x = a / b; y = (c) / 2; z = v[0] / 3; w = 4 / 2 / 1;",
      "r = ______.test(s) ? p : ______; q = f(______, 1);",
      "function k() { return ___; } o.return / 2; typeof ___;",
    ].join("\n"),
  );
});

Deno.test("codeMask skips escaped backticks and quotes, and backticks in comments and strings", () => {
  const src = "e = `a\\`b${x}\\`` + y; s = \"\\\"`\" + '\\'`' + z;\n" +
    "/* ` */ m = n; // `\nk = 1;\n";
  assertEquals(
    shown(src),
    "e = ____________ + y; s = _____ + _____ + z;\n" +
      "_______ m = n; ____\nk = 1;\n",
  );
});

Deno.test("equality and logic are opt-in, planted only in code, and never on a non-null x!", () => {
  const src = [
    'if (a === b || c !== "x && y") return !d; // e == f && !g',
    "const h = i! && !(j != k) ? m!.n : !!p == q;",
    "const r = `${s && !t}`, u = /v || !w/;",
    "x = o![0] + g!(1);",
  ].join("\n");
  const byDefault = new Set(findMutants(src).map((m) => m.op));
  assertEquals([...byDefault], ["literal", "arith"]);
  const got = findMutants(src, ["equality", "logic"]).map((m) =>
    `${m.line}:${m.col} ${m.op} ${m.from}→${m.to}`
  );
  assertEquals(got, [
    "1:7 equality ===→!==",
    "1:13 logic ||→&&",
    "1:18 equality !==→===",
    "1:39 logic !→",
    "2:14 logic &&→||",
    "2:17 logic !→",
    "2:21 equality !=→==",
    "2:36 logic !→",
    "2:37 logic !→",
    "2:40 equality ==→!=",
  ]);
  const m = findMutants("x = !y;", ["logic"])[0];
  assertEquals(applyMutant("x = !y;", m), "x = y;");
});

// `both(1, 2)` is true and `both(0, 2)` false: of its six equality and logic
// mutants only `&& → ||` (b is never 3 where a !== b is false) survives.
const LOGIC_MOD = `/** Fixture. */
export function both(a: number, b: number): boolean {
  if (a === 0 || !(b > 0)) return false;
  return a !== b && b != 3;
}
`;

Deno.test("--ops equality,logic kills five of the logic fixture's mutants, one survives", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mutate_test_" });
  try {
    await Deno.writeTextFile(`${dir}/mod.ts`, LOGIC_MOD);
    await Deno.writeTextFile(
      `${dir}/check.ts`,
      `import { both } from "./mod.ts";
if (both(1, 2) !== true || both(0, 2) !== false) Deno.exit(1);
`,
    );
    const r = await tool([
      "--file",
      `${dir}/mod.ts`,
      "--ops",
      "equality,logic",
      "--",
      DENO,
      "run",
      `${dir}/check.ts`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    // Without --ops, none of them is a candidate.
    const plain = await tool(["--file", `${dir}/mod.ts`, "--list"]);
    assertEquals(
      plain.stdout.trim().split("\n").map((l) => JSON.parse(l).op),
      ["literal", "compare", "literal", "literal", "literal"],
    );
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(
      (lines.slice(0, -1) as Result[]).map((x) => [x.op, x.mutant, x.killed]),
      [
        ["equality", "=== → !==", true],
        ["logic", "|| → &&", true],
        ["logic", "! → (removed)", true],
        ["equality", "!== → ===", true],
        ["logic", "&& → ||", false],
        ["equality", "!= → ==", true],
      ],
    );
    assertEquals(lines.at(-1).survived, 1);
    assertEquals(await Deno.readTextFile(`${dir}/mod.ts`), LOGIC_MOD);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commandRunner() removes what the tests left in the temporary folder, when they fail and when they are killed at the timeout", async () => {
  const outer = await Deno.makeTempDir();
  const saved = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", outer);
  try {
    const leaves = (then: string) =>
      commandRunner([
        Deno.execPath(),
        "eval",
        `await Deno.writeTextFile(\`\${await Deno.makeTempDir()}/x\`, ""); ${then}`,
      ]);
    assertEquals(await leaves("Deno.exit(1)")(30_000), {
      passed: false,
      timeout: false,
    });
    const hangs = leaves("await new Promise((r) => setTimeout(r, 60_000))");
    assertEquals(await hangs(3_000), { passed: false, timeout: true });
    assertEquals([...Deno.readDirSync(outer)], []);
  } finally {
    if (saved === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", saved);
    await Deno.remove(outer, { recursive: true });
  }
});
