"""``autocall test SCRIPT.dlg...``: run each script's scenarios (``SCRIPT.test.toml``) like a test runner."""

from __future__ import annotations

import json
import sys

from autocall.cli.common import add_config_option, config_from, new_compiler, use_color


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "test", help="run the scenario tests kept beside scripts",
        description="Run every scenario of each script's scenario file (SCRIPT.test.toml beside SCRIPT.dlg) "
                    "as a simulated call and check what it expects: path, result, prompts, inputs, "
                    "variables, transfers. Exit 1 if any scenario fails. The file format is in "
                    "docs/getting-started.md.",
        epilog="examples: autocall test support.dlg; autocall test scripts_examples/; "
               "autocall test support.dlg -k closed")
    parser.add_argument("scripts", nargs="+", metavar="SCRIPT",
                        help="a .dlg script, its .test.toml, or a folder of scripts")
    parser.add_argument("-k", dest="filters", action="append", default=[], metavar="NAME",
                        help="run only scenarios whose name contains NAME (case-insensitive; repeatable)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from autocall.scenarios import ScenarioRunner, TextReport, expand_targets, json_report, run_all

    config = config_from(args)
    runner = ScenarioRunner(new_compiler(), filters=args.filters, max_duration_ms=config.max_call_duration)
    report = None if args.json else TextReport(sys.stdout, color=use_color(sys.stdout))

    def show(outcome) -> None:
        for diagnostic in outcome.diagnostics:
            sys.stderr.write(diagnostic + "\n")
        if report is not None:
            report.script(outcome)

    outcomes, summary = run_all(expand_targets(args.scripts), runner, show)
    if report is not None:
        report.summary(summary, args.filters)
    else:
        sys.stdout.write(json.dumps(json_report(outcomes, summary), indent=2, ensure_ascii=False) + "\n")
    return 0 if summary.ok else 1
