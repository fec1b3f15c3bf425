"""``autocall prompts build SCRIPT...`` renders every prompt the scripts can play without per-call data into
sounds_dir; ``autocall prompts prune`` trims the sound cache to its size cap, least recently used first."""

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
    prune = actions.add_parser(
        "prune", help="remove the least recently used sounds past the cache's size cap",
        description="Remove rendered and converted sounds (sounds_dir/tts and sounds_dir/file), least "
                    "recently used first, until the cache fits sound_cache_max_mb (or --max-mb). A sound "
                    "used in the last 15 minutes is kept; anything removed is made again when needed.")
    prune.add_argument("--max-mb", type=int, metavar="MB", help="the cap for this run (default: sound_cache_max_mb)")
    add_config_option(prune)
    prune.add_argument("--sounds-dir", metavar="DIR", help="prune this folder instead of the configured sounds_dir")
    prune.set_defaults(func=run_prune)


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



def run_prune(args: argparse.Namespace) -> int:
    from autocall.audio.library import SoundLibrary
    from autocall.errors import UserError

    config = config_from(args)
    cap_mb = config.sound_cache_max_mb if args.max_mb is None else args.max_mb
    if args.max_mb is None and cap_mb == 0:
        print("prompts: sound_cache_max_mb is 0 (no cap); nothing removed (give --max-mb to prune anyway)")
        return 0
    if cap_mb < 0:
        raise UserError(f"--max-mb {cap_mb}: give a size in megabytes, 0 or more")
    library = SoundLibrary.from_config(config, sounds_dir=args.sounds_dir)
    try:
        report = library.prune(cap_mb * 1_000_000)
    except OSError as exc:
        raise UserError(f"{library.sounds_dir}: cannot prune the sound cache ({exc.strerror or exc}); "
                        "check the folder's permissions") from None
    finally:
        library.close()
    print(f"prompts: removed {report.removed} sounds ({report.freed_bytes / 1e6:.1f} MB); the cache holds "
          f"{report.kept} ({report.kept_bytes / 1e6:.1f} MB, cap {cap_mb} MB) in {library.sounds_dir}")
    return 0
