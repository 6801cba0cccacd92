import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  acceptedValues,
  convertOption,
  listItems,
  parseCommandLine,
  UsageError,
  usageText,
} from "./mod.ts";

const TABLE = {
  steps: { kind: "integer", min: 1, default: 10, help: "steps" },
  shift: { kind: "number", help: "any number" },
  alibi: { kind: "number", min: 0, note: "0: none", help: "slope" },
  text: { kind: "string", help: "the text" },
  resume: { kind: "boolean", default: false, help: "continue" },
  matmul: { kind: "boolean", default: true, help: "time matmuls" },
  keep: {
    kind: "choice",
    choices: ["last", "best"],
    default: "last",
    help: "",
  },
} as const;

function parsed(argv: string[], positionals = false) {
  const line = parseCommandLine(argv, TABLE, { positionals });
  if (line.help) throw new Error("parsed as help");
  return line;
}

function refused(argv: string[], message: string): void {
  assertThrows(() => parseCommandLine(argv, TABLE), UsageError, message);
}

Deno.test("parseCommandLine() reads booleans bare, with a word, and negated", () => {
  assertEquals(parsed(["--resume"]).values.resume, true);
  assertEquals(parsed(["--resume", "false", "--steps", "3"]).given, {
    resume: false,
    steps: 3,
  });
  assertEquals(parsed(["--resume", "--steps", "3"]).given, {
    resume: true,
    steps: 3,
  });
  assertEquals(parsed(["--no-matmul"]).values.matmul, false);
  assertEquals(parsed(["--resume=0"]).values.resume, false);
});

Deno.test("an empty value of a yes/no option is missing, not yes: --resume= and --matmul= are refused in one line", () => {
  refused(["--resume="], "Option --resume needs a value: true or false");
  refused(["--matmul=", "--steps", "3"], "Option --matmul needs a value");
  assertThrows(
    () => convertOption("force", { kind: "boolean", help: "" }, ""),
    UsageError,
    "Option --force needs a value: true or false",
  );
});

Deno.test("parseCommandLine() keeps values that start with a dash, and takes the last of repeats", () => {
  assertEquals(parsed(["--shift", "-1.5"]).given, { shift: -1.5 });
  assertEquals(parsed(["--shift=-2"]).given, { shift: -2 });
  assertEquals(parsed(["--text", "-x y"]).given, { text: "-x y" });
  assertEquals(parsed(["--steps", "3", "--steps", "4"]).given, { steps: 4 });
  // Absent options: their defaults, or undefined.
  assertEquals(parsed([]).values, {
    steps: 10,
    shift: undefined,
    alibi: undefined,
    text: undefined,
    resume: false,
    matmul: true,
    keep: "last",
  });
});

Deno.test("parseCommandLine() names the option, what it accepts and what it got", () => {
  refused(
    ["--alibi", "-1"],
    "Option --alibi must be a number ≥ 0 (0: none), got -1",
  );
  refused(
    ["--steps", "-5"],
    "Option --steps must be a positive integer, got -5",
  );
  refused(
    ["--steps", "2.5"],
    "Option --steps must be a positive integer, got 2.5",
  );
  refused(
    ["--steps", "many"],
    'Option --steps must be a positive integer, got "many"',
  );
  refused(["--steps"], "Option --steps needs a value: a positive integer");
  refused(["--steps", "--resume"], "Option --steps needs a value");
  refused(
    ["--keep", "first"],
    'Option --keep must be one of last, best, got "first"',
  );
  refused(
    ["--resume=maybe"],
    'Option --resume must be true or false, got "maybe"',
  );
  refused(
    ["--bogus=1"],
    "Unknown option --bogus: accepted options are --steps, --shift, --alibi, --text, --resume, --matmul, --keep, --help",
  );
  refused(["--no-steps"], "Unknown option --no-steps");
  refused(
    ["stray"],
    'Unexpected argument "stray": options look like --key value',
  );
  // What follows -- was dropped unread: `-- --steps 5` ran with the default.
  refused(
    ["--steps", "2", "--", "--steps", "5"],
    'Unexpected argument "--steps" after --: this command takes only options',
  );
  refused(["--", "x"], 'Unexpected argument "x" after --');
});

Deno.test("parseCommandLine(): -- as a value is a value, and ends the options of a command with arguments", () => {
  const line = parseCommandLine(["--text", "--"], TABLE);
  assertEquals(line.help ? undefined : line.values.text, "--");
  assertEquals(parsed(["--", "--steps"], true).positionals, ["--steps"]);
});

Deno.test("parseCommandLine() gives other arguments back when asked to, and -h wins", () => {
  assertEquals(parsed(["epochs", "--steps", "2"], true).positionals, [
    "epochs",
  ]);
  assertEquals(parseCommandLine(["--steps", "x", "-h"], TABLE).help, true);
});

Deno.test("parseCommandLine() refuses a missing required option by name", () => {
  const table = {
    text: { kind: "string", required: true, help: "the text with blanks" },
  } as const;
  assertThrows(
    () => parseCommandLine([], table),
    UsageError,
    "Option --text is required: the text with blanks",
  );
});

Deno.test("usageText() lists every option with its placeholder and default, and the shown defaults", () => {
  const text = usageText({
    command: "deno task x",
    summary: "Does x.",
    options: TABLE,
    defaults: { steps: 800 },
    epilogue: "Examples:\n  deno task x --steps 3",
  });
  assertStringIncludes(text, "  --steps N");
  assertStringIncludes(text, "steps (default 800)");
  assertStringIncludes(text, "--keep last|best");
  assertStringIncludes(text, "--resume  ");
  assertStringIncludes(text, "\nExamples:\n  deno task x --steps 3\n");
});

Deno.test("convertOption() reads decimal numbers only, and integers only when exact", () => {
  const lr = { kind: "number", above: 0, help: "" } as const;
  const steps = { kind: "integer", min: 1, help: "" } as const;
  for (
    const s of ["0x10", "0b11", "0o7", "Infinity", " 5", "5 ", "1_000", ""]
  ) {
    assertThrows(() => convertOption("lr", lr, s), UsageError, "Option --lr");
  }
  assertEquals(convertOption("lr", lr, "3e-4"), 3e-4);
  assertEquals(convertOption("lr", lr, ".5"), 0.5);
  assertEquals(convertOption("lr", lr, "+2."), 2);
  for (const s of ["1.5", "1e300", "9007199254740993", "0x10"]) {
    assertThrows(
      () => convertOption("steps", steps, s),
      UsageError,
      "Option --steps must be a positive integer, got ",
    );
  }
  assertThrows(() => convertOption("steps", steps, 2 ** 60), UsageError);
});

Deno.test("convertOption() reads an integer only in digits: 1e1, 10.0, 0x10 and padded text are refused, naming the option", () => {
  const steps = { kind: "integer", min: 1, help: "" } as const;
  const alibi = { kind: "integer", help: "" } as const; // negatives allowed
  assertEquals(convertOption("steps", steps, "10"), 10);
  assertEquals(convertOption("steps", steps, "+10"), 10);
  assertEquals(convertOption("steps", steps, "010"), 10); // decimal, not octal
  assertEquals(convertOption("alibi", alibi, "-3"), -3);
  assertEquals(convertOption("steps", steps, 10), 10); // a program's number
  for (const s of ["1e1", "1E1", "10.0", "10.", "1.0e1"]) {
    assertThrows(
      () => convertOption("steps", steps, s),
      UsageError,
      `Option --steps must be a positive integer written in digits, got ${s} (write 10)`,
    );
  }
  for (const s of ["0x10", " 10", "10 ", "1_0", "ten", "1e-1", "0.0"]) {
    assertThrows(
      () => convertOption("steps", steps, s),
      UsageError,
      "Option --steps must be a positive integer, got ",
    );
  }
  assertThrows(
    () => convertOption("alibi", alibi, "-1e1"),
    UsageError,
    "Option --alibi must be an integer written in digits, got -1e1 (write -10)",
  );
  // A number option still reads any decimal notation.
  const lr = { kind: "number", above: 0, help: "" } as const;
  assertEquals(convertOption("lr", lr, "1e-3"), 1e-3);
  assertEquals(convertOption("lr", lr, "10.0"), 10);
});

Deno.test("listItems() refuses empty and repeated items", () => {
  assertEquals(listItems("genSteps", " 4,16 "), ["4", "16"]);
  assertThrows(
    () => listItems("genSteps", "4,16,4"),
    UsageError,
    "lists 4 twice",
  );
  assertThrows(
    () => listItems("models", "ar,"),
    UsageError,
    "Option --models has an empty item",
  );
});

Deno.test("convertOption() takes min and max themselves, and refuses above and below themselves", () => {
  const closed = { kind: "number", min: 0, max: 1, help: "" } as const;
  assertEquals(convertOption("p", closed, "0"), 0);
  assertEquals(convertOption("p", closed, "1"), 1);
  const steps = { kind: "integer", min: 2, max: 5, help: "" } as const;
  assertEquals(convertOption("steps", steps, "2"), 2);
  assertEquals(convertOption("steps", steps, 5), 5);
  const open = { kind: "number", above: 0, below: 1, help: "" } as const;
  assertEquals(convertOption("p", open, "0.5"), 0.5);
  for (const s of ["0", "1"]) {
    assertThrows(
      () => convertOption("p", open, s),
      UsageError,
      `Option --p must be a number in (0, 1), got ${s}`,
    );
  }
});

Deno.test("convertOption() takes 0 and float32's normal range with both ends, and refuses subnormals and overflow", () => {
  const x = { kind: "number", help: "" } as const;
  // float32's bit patterns, read back as numbers: an independent reference.
  const f32 = (bits: number) =>
    new Float32Array(new Uint32Array([bits]).buffer)[0];
  const minNormal = f32(0x00800000); // 2⁻¹²⁶
  const maxSubnormal = f32(0x007fffff);
  const max = f32(0x7f7fffff); // ≈ 3.40e38
  for (const v of [0, minNormal, -minNormal, max, -max]) {
    assertEquals(convertOption("x", x, v), v);
    assertEquals(convertOption("x", x, String(v)), v);
  }
  // Half a float32 step past the largest: float32 rounds it to Infinity.
  const past = max + 2 ** 103;
  assertEquals(Math.fround(past), Infinity);
  for (const v of [maxSubnormal, minNormal / 2, 1e-40, past, -past, 3.5e38]) {
    assertThrows(
      () => convertOption("x", x, v),
      UsageError,
      "Option --x must be a number that float32 holds",
    );
  }
});

Deno.test("convertOption() reads 1 as true, takes an empty value where the default is empty, and refuses a program's non-string for a string option", () => {
  const flag = { kind: "boolean", help: "" } as const;
  assertEquals(convertOption("resume", flag, "1"), true);
  assertEquals(convertOption("resume", flag, "0"), false);
  const prefix = { kind: "string", default: "", help: "" } as const;
  assertEquals(convertOption("prefix", prefix, ""), "");
  const text = { kind: "string", help: "" } as const;
  assertThrows(
    () => convertOption("text", text, ""),
    UsageError,
    "Option --text needs a value",
  );
  assertThrows(
    () => convertOption("text", text, 5),
    UsageError,
    "Option --text must be a value, got 5",
  );
});

Deno.test("acceptedValues() says a bounded count's range and a boolean's note", () => {
  assertEquals(
    acceptedValues({ kind: "integer", min: 1, max: 5, help: "" }),
    "an integer in [1, 5]",
  );
  assertEquals(
    acceptedValues({ kind: "boolean", note: "default on", help: "" }),
    "true or false (default on)",
  );
  assertEquals(
    acceptedValues({ kind: "number", below: 1, help: "" }),
    "a number < 1",
  );
  assertEquals(
    acceptedValues({ kind: "integer", above: 0, max: 3, help: "" }),
    "an integer in (0, 3]",
  );
});

/** The flags of a `--help` text's option lines, in order (`-h, --help` aside). */
function helpFlags(text: string): string[] {
  return [...text.matchAll(/^ {2}--([\w-]+)/gm)].map((m) => m[1]);
}

const GROUPED = {
  command: "deno task g",
  summary: "Does g.",
  groups: { run: "Run", model: "Model", eval: "Evaluation" },
  options: {
    out: { kind: "string", group: "run", common: true, help: "run folder" },
    nLayer: { kind: "integer", group: "model", help: "blocks" },
    seeds: { kind: "integer", group: "run", help: "seeds" },
    steps: { kind: "integer", group: "eval", common: true, help: "steps" },
    dModel: { kind: "integer", group: "model", common: true, help: "width" },
  },
} as const;

Deno.test("usageText() with groups lists every option once, under its group's heading, in the groups' order", () => {
  const text = usageText(GROUPED, { all: true });
  assertEquals(helpFlags(text), [
    "out",
    "seeds",
    "n-layer",
    "d-model",
    "steps",
  ]);
  assertEquals(
    [...text.matchAll(/^(\S.*) options:$/gm)].map((m) => m[1]),
    ["Run", "Model", "Evaluation"],
  );
  assertStringIncludes(text, "Model options:\n  --n-layer N");
  assertEquals(text.includes("options shown"), false);
});

Deno.test("usageText() shows the common options alone, each once, and says how to see all", () => {
  const text = usageText(GROUPED);
  assertEquals(helpFlags(text), ["out", "d-model", "steps"]);
  assertStringIncludes(
    text,
    "\n3 of 5 options shown; deno task g --help all lists every one.\n",
  );
  assertStringIncludes(text, "-h, --help");
  // A table without common options: --help and --help all are the same.
  const plain = { command: "deno task x", summary: "Does x.", options: TABLE };
  assertEquals(usageText(plain), usageText(plain, { all: true }));
  assertEquals(helpFlags(usageText(plain)), Object.keys(TABLE));
});

Deno.test("usageText() refuses an option whose group the usage does not name: it would be missing from --help", () => {
  for (const group of ["trainig", undefined]) {
    assertThrows(
      () =>
        usageText({
          ...GROUPED,
          options: {
            ...GROUPED.options,
            lr: { kind: "number", group, help: "" },
          },
        }, { all: true }),
      Error,
      `Option --lr names group ${
        JSON.stringify(group)
      }, not one of the usage's groups: run, model, eval`,
    );
  }
});

Deno.test("parseCommandLine() reads --help all, -h all and --help=all as help with every option", () => {
  for (const argv of [["--help", "all"], ["-h", "all"], ["--help=all"]]) {
    assertEquals(parseCommandLine(argv, TABLE), { help: true, all: true });
  }
  for (const argv of [["--help"], ["-h"], ["--help", "--steps", "2"]]) {
    assertEquals(parseCommandLine(argv, TABLE), { help: true, all: false });
  }
});

// Plant: parseCommandLine passing no table to checkArgumentText (a review's
// `sample --resume $'x\xff'` was "The value of --resume", an option that
// takes none), or its test inverted (the value option named as stray).
Deno.test("parseCommandLine() names a U+FFFD value by its option only where the option takes a value", () => {
  const refusal = (argv: string[]) =>
    assertThrows(() => parseCommandLine(argv, TABLE), UsageError).message
      .split(" (")[0];
  assertEquals(refusal(["--text", "a\uFFFD"]), "The value of --text");
  assertEquals(refusal(["--resume", "a\uFFFD"]), "Argument 2");
  assertEquals(refusal(["--nope", "a\uFFFD"]), "Argument 2");
});
