"""``autocall say "TEXT" [--voice V] [--rate N] [-o OUT.wav] [--play]``: hear a prompt before it goes live."""

from __future__ import annotations

import argparse

from autocall.cli.common import add_config_option, config_from

# Imports of autocall.audio happen inside the command: every `autocall` run imports this module.


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "say", help="speak a text as a prompt would sound, to a file or the speakers",
        description="Render TEXT with the text-to-speech a prompt goes through (same voices, same 16 kHz "
                    "sound a call hears) and write it with -o (OUT.wav, OUT.sln16, OUT.sln, or OUT "
                    "without an extension for both .sln16 and .sln) or play it with --play "
                    "(paplay, pw-play, aplay or ffplay, the first found).")
    parser.add_argument("text", metavar="TEXT", help="what to say, in quotes")
    parser.add_argument("--voice", help='a voice as a script names it: "en-us", "it", "de+f3", ... '
                                        "(default: the configured voice; list: autocall audio voices)")
    parser.add_argument("--rate", type=int, help="words per minute, 80 to 450 (default: the configured rate)")
    parser.add_argument("-o", "--output", metavar="OUT", help="the file to write")
    parser.add_argument("--play", action="store_true", help="play the sound on this machine")
    add_config_option(parser)
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from autocall.audio.say import speak

    if not args.output and not args.play:
        args.parser.error("give -o OUT.wav to write the sound, --play to hear it, or both")
    config = config_from(args)
    voice = args.voice or config.voice
    rate = config.rate if args.rate is None else args.rate
    spoken = speak(args.text, voice, rate, args.output, args.play)
    done = f"wrote {', '.join(spoken.paths)}" if spoken.paths else "played"
    print(f"{done}: {spoken.seconds:.1f} s, voice {spoken.voice}, rate {spoken.rate}")
    return 0
