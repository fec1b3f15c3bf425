"""Generates a large, realistic dialogue (menus, gathers with branches, announcements) for benchmarks."""

from __future__ import annotations


def generate(states: int) -> str:
    """A script of ``states`` states that compiles cleanly: every state reachable, no waitless loop."""
    out = ["# generated benchmark dialogue", "dialogue generated", "timeout 5s", "tries 3",
           'param company = "Acme"', "var count = 0", f"start s0", ""]
    last = states - 1
    for i in range(states):
        nxt, skip = min(i + 1, last), min(i + 2, last)
        kind = i % 3
        out.append(f"state s{i}:")
        if i == last:
            out += ['    say "Thank you for calling {company}. Goodbye."', "    hangup", ""]
            continue
        if kind == 0:
            out += [f'    menu "For option one press 1. For option two press 2." timeout 6s:',
                    f"        1 -> s{nxt}", f"        2 -> s{skip}",
                    '        invalid say "That is not a valid choice."', f"        failure -> s{last}"]
        elif kind == 1:
            out += [f'    gather code digits 4 prompt "Please enter your code." timeout 8s',
                    '    if code == "1234" or count > 3:', f"        goto s{nxt}",
                    '    say "That code is not correct."', f"    goto s{skip}"]
        else:
            out += [f'    say "You reached step {i} of {{company}}."', "    set count = count + 1",
                    f"    goto s{nxt}"]
        out.append("")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys
    sys.stdout.write(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
