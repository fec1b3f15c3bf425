"""What the compiler checks of ring groups, announcements and queues (errors with their place)."""

from __future__ import annotations

HEADER = "dialogue t\nstart main\n"


def errors(compile_text, body: str) -> list[str]:
    result = compile_text(HEADER + body)
    return [d.headline() for d in result.errors]


def test_options_given_twice_and_unknown_prompts_are_errors(compile_text):
    found = errors(compile_text, 'state main:\n    transfer "PJSIP/1", "PJSIP/2" ring all ring in order '
                                 'announce nope record record\n')
    assert any("'ring' is given twice in this transfer" in e for e in found)
    assert any("'record' is given twice in this transfer" in e for e in found)
    assert any("unknown prompt 'nope'" in e for e in found)


def test_too_many_destinations_is_an_error_at_the_first_extra_one(compile_text):
    destinations = ", ".join(f'"PJSIP/{n}"' for n in range(21))
    line = f"    transfer {destinations}"
    found = errors(compile_text, f"state main:\n{line}\n")
    column = line.index('"PJSIP/20"') + 1
    assert len(found) == 1
    assert found[0].endswith(f"test.dlg:4:{column}: error: a transfer may ring at most 20 destinations")


def test_queue_checks_its_name_timeout_and_announcement(compile_text):
    found = errors(compile_text, 'state main:\n    queue who timeout 5 announce nope\n')
    assert any("unknown variable 'who'" in e for e in found)
    assert any("5 has no unit; write 5s" in e for e in found)
    assert any("unknown prompt 'nope'" in e for e in found)
    assert any("longer than the limit" in e
               for e in errors(compile_text, 'state main:\n    queue "q" timeout 300m\n'))


def test_the_new_words_stay_usable_as_names(compile_text):
    result = compile_text(HEADER + 'var ring = "PJSIP/1"\nvar order = 1\nprompt announce = "x"\nvar all = 2\n'
                                   'state main:\n    transfer ring, ring ring in order announce announce\n'
                                   '    log "{order}{all}"\n')
    assert result.ok, result.render()
    op = result.program.states["main"]["code"][0]
    assert op["dests"] == [["var", "ring"], ["var", "ring"]] and op["ring"] == "order"
