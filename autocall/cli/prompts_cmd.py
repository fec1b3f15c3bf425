"""``autocall prompts build SCRIPT...``: render every prompt the scripts can play without per-call data, into sounds_dir."""

from __future__ import annotations

import argparse
import sys

from autocall.cli.common import add_config_option, config_from

# Imports of autocall.audio happen inside the command: every `autocall` run imports this module.


def register(subparsers) -> None:
    parser = subparsers.add_parser("prompts", help="render the scripts' prompts ahead of time",
                                   description="Prepare prompts in the configured sounds_dir before calls need them.")
    actions = parser.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="render every prompt of the scripts into sounds_dir",
        description="Compile the scripts and render every text-to-speech prompt that needs no per-call "
                    "data, convert every audio-file prompt, and install the standard sounds. Prompts "
                    "that interpolate per-call values are rendered at call time, through the same cache.")
    build.add_argument("scripts", nargs="+", metavar="SCRIPT")
    add_config_option(build)
    build.add_argument("--sounds-dir", metavar="DIR", help="write here instead of the configured sounds_dir")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from autocall.audio.build import build_prompts
    from autocall.audio.library import SoundLibrary
    from autocall.audio.standard import install_standard_prompts
    from autocall.cli.common import new_compiler

    config = config_from(args)
    compiler = new_compiler()
    prompts, compile_failed = [], False
    for path in args.scripts:
        result = compiler.compile_file(path)
        if result.diagnostics:
            sys.stderr.write(result.render() + "\n")
        if not result.ok:
            compile_failed = True
            continue
        prompts.extend(result.program.static_prompts())

    with SoundLibrary.from_config(config, sounds_dir=args.sounds_dir) as library:
        installed = install_standard_prompts(library.sounds_dir)
        report = build_prompts(prompts, library, progress=sys.stderr.isatty())
    # report.warnings repeat what the compiler already said (it validates every file prompt)
    for message in report.failed:
        sys.stderr.write(f"autocall: error: {message}\n")
    for placed in report.placed:
        where = library.path_of(placed.name)
        print(f"{'rendered' if placed.made else 'cached':<9} {placed.prompt} -> {where}.sln16 (+ .sln)")
    print(f"prompts: {report.summary()}; standard sounds: {', '.join(installed)}; in {library.sounds_dir}")
    if compile_failed:
        sys.stderr.write("autocall: error: some scripts did not compile; their prompts were not built\n")
    return 0 if report.ok and not compile_failed else 1

