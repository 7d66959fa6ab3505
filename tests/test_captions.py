"""Captions made from Bandai-Namco content x style labels: variety, form and faithfulness."""

from __future__ import annotations

import itertools
import re

import pytest

from free3d.data.captions import (
    CONTENT_PHRASES,
    STYLE_PHRASES,
    known_contents,
    known_styles,
    label_from_cfg,
    make_captions,
)

DATASET1_CONTENTS = {"walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow",
                     "bye", "guide", "byebye", "respond", "call", "punch", "kick", "slash",
                     "dance-long", "dance-short"}
DATASET1_STYLES = {"normal", "happy", "sad", "angry", "proud", "not-confident",
                   "masculinity", "feminine", "childish", "old", "tired", "active",
                   "musical", "giant", "chimpira"}
DATASET2_CONTENTS = {"walk", "walk-turn-left", "walk-turn-right", "run", "wave-both-hands",
                     "wave-left-hand", "wave-right-hand", "raise-up-both-hands",
                     "raise-up-left-hand", "raise-up-right-hand"}
DATASET2_STYLES = {"active", "elderly", "exhausted", "feminine", "masculine", "normal",
                   "youthful"}

PAIRS = list(itertools.product(sorted(known_contents()), sorted(known_styles())))

# (words one of which every caption must contain, words no caption may contain)
DIRECTION = r"\b(?:left|leftward|right|rightward|back|backward|backwards|turn|turns)\b"
CONTENT_RULES: dict[str, tuple[str, str | None]] = {
    "walk": (r"\bwalk", DIRECTION),
    "run": (r"\b(?:run|runs|jogs)\b", DIRECTION),
    "dash": (r"\b(?:dash|dashes|sprints|rushes)\b", DIRECTION),
    "walk-back": (r"\b(?:back|backward|backwards)\b", r"\b(?:left|right|forward|ahead)\b"),
    "walk-left": (r"\bleft", r"\b(?:right|rightward|back|backward|backwards)\b"),
    "walk-right": (r"\bright", r"\b(?:left|leftward|back|backward|backwards)\b"),
    "walk-turn-left": (r"\bturn.*\bleft\b|\bleft turn\b", r"\bright\b"),
    "walk-turn-right": (r"\bturn.*\bright\b|\bright turn\b", r"\bleft\b"),
    "bow": (r"\bbow", None),
    "bye": (r"\b(?:goodbye|farewell)\b", r"\bboth\b"),
    "byebye": (r"\b(?:goodbye|farewell)\b.*\bboth\b|\bboth\b.*\bgoodbye\b", None),
    "guide": (r"\bway\b", None),
    "respond": (r"\b(?:respond|responds|reply|answers|acknowledges)\b", None),
    "call": (r"\b(?:beckons|calls|call|come over)\b", None),
    "punch": (r"\b(?:punch|punches|fist)\b", r"\bkick"),
    "kick": (r"\bkick", r"\bpunch"),
    "slash": (r"\bsword\b", None),
    "dance-long": (r"\bdanc.*|\blong|\bextended\b|\blengthy\b", r"\b(?:short|brief|quick)\b"),
    "dance-short": (r"\bdanc", r"\b(?:long|extended|lengthy)\b"),
    "wave-both-hands": (r"\bwave.*\bboth\b|\bboth\b.*\bwave", DIRECTION),
    "wave-left-hand": (r"\bwave.*\bleft\b|\bleft\b.*\bwave", r"\b(?:right|both)\b"),
    "wave-right-hand": (r"\bwave.*\bright\b|\bright\b.*\bwave", r"\b(?:left|both)\b"),
    "raise-up-both-hands": (r"\b(?:raises|lifts|puts)\b.*\bboth\b", DIRECTION),
    "raise-up-left-hand": (r"\b(?:raises|lifts|puts)\b.*\bleft\b", r"\b(?:right|both)\b"),
    "raise-up-right-hand": (r"\b(?:raises|lifts|puts)\b.*\bright\b", r"\b(?:left|both)\b"),
}


def _style_phrases(style: str) -> list[str]:
    p = STYLE_PHRASES[style]
    return [*p.adjectives, *p.adverbs, *p.clauses, *p.subjects]


def test_every_dataset_label_is_known():
    assert DATASET1_CONTENTS | DATASET2_CONTENTS == known_contents()
    assert DATASET1_STYLES | DATASET2_STYLES == known_styles()
    assert set(CONTENT_RULES) == known_contents()


def test_phrase_tables_are_rich_enough():
    for content, phrases in CONTENT_PHRASES.items():
        assert len(set(phrases)) >= 3, content
    for style, p in STYLE_PHRASES.items():
        for kind in ("adjectives", "adverbs", "clauses", "subjects"):
            assert len(set(getattr(p, kind))) >= 2, (style, kind)


def test_style_phrases_name_no_direction():
    # a style phrase saying "back" or "left" would contradict the content's direction
    for style in known_styles():
        for phrase in _style_phrases(style):
            assert not re.search(DIRECTION + r"|\bforward\b|\bahead\b", phrase), (style, phrase)


@pytest.mark.parametrize("content,style", PAIRS)
def test_every_pair_gives_distinct_well_formed_faithful_captions(content, style):
    caps = make_captions(content, style)
    assert len(caps) == 6 and len(set(caps)) == 6
    must, must_not = CONTENT_RULES[content]
    style_words = _style_phrases(style)
    for c in caps:
        assert c == c.strip() and c.endswith(".") and c.count(".") == 1, c
        assert "  " not in c and " ." not in c and " ," not in c and ",," not in c, c
        assert "{" not in c and "}" not in c, c
        assert c == c.lower(), c
        assert not re.search(r"\b(\w+) \1\b", c), c  # no "walks walks"
        # a/an agreement
        assert not re.search(r"\ba [aeio]|\ba u(?!ni|se|su)", c), c
        assert not re.search(r"\ban [^aeiou\W]", c), c
        assert any(vp in c for vp in CONTENT_PHRASES[content]), c
        assert re.search(must, c), (content, c)
        if must_not:
            assert not re.search(must_not, c), (content, c)
        if style != "normal":
            assert any(w in c for w in style_words), (style, c)


@pytest.mark.parametrize("content,style", PAIRS)
def test_captions_use_varied_frames(content, style):
    caps = make_captions(content, style, n=5)
    openings = {" ".join(c.split()[:2]) for c in caps}
    assert len(openings) >= 3, caps
    assert sum("," in c for c in caps) >= 1, caps
    assert sum("," not in c for c in caps) >= 1, caps


def test_many_captions_are_achievable():
    for content, style in PAIRS:
        assert len(set(make_captions(content, style, n=12))) == 12


def test_deterministic_and_seed_dependent():
    for content, style in PAIRS:
        assert make_captions(content, style, seed=3) == make_captions(content, style, seed=3)
        assert make_captions(content, style, seed="7:clip") == make_captions(
            content, style, seed="7:clip")
    assert any(make_captions(c, s, seed=0) != make_captions(c, s, seed=1) for c, s in PAIRS)
    # a larger n extends a smaller one's list, so n does not reshuffle what was there
    assert make_captions("walk", "happy", n=8)[:5] == make_captions("walk", "happy", n=5)


def test_normal_style_has_no_empty_slot_artifacts():
    for content in known_contents():
        for seed in range(5):
            for c in make_captions(content, "normal", n=8, seed=seed):
                assert not c.startswith((" ", ",")) and "  " not in c and " ," not in c, c


def test_unknown_labels_raise_naming_the_label():
    with pytest.raises(ValueError, match="moonwalk") as err:
        make_captions("moonwalk", "happy")
    assert "walk-back" in str(err.value)  # lists the known ones
    with pytest.raises(ValueError, match="grumpy") as err:
        make_captions("walk", "grumpy")
    assert "chimpira" in str(err.value)
    with pytest.raises(ValueError):
        make_captions("dataset-1_walk", "normal")  # labels must have the prefix removed
    with pytest.raises(ValueError):
        make_captions("walk", "normal", n=0)


def test_label_from_cfg():
    assert label_from_cfg("dataset-1_walk-back") == "walk-back"
    assert label_from_cfg("dataset-2_raise-up-left-hand") == "raise-up-left-hand"
    assert label_from_cfg("dataset-1_not-confident\n") == "not-confident"
    assert label_from_cfg("walk") == "walk"
    for name in DATASET1_CONTENTS | DATASET1_STYLES:
        assert label_from_cfg(f"dataset-1_{name}") == name


def test_mirror_caption_swaps_sides_and_turns_keeping_case():
    from free3d.text.mirror import mirror_caption

    assert mirror_caption("A person waves the Right hand, then the left.") == \
        "A person waves the Left hand, then the right."
    assert mirror_caption("turns LEFT and walks leftwards, clockwise") == \
        "turns RIGHT and walks rightwards, counterclockwise"
    assert mirror_caption("a bright, leftover light") == "a bright, leftover light"  # whole words only
    assert mirror_caption("spins counter-clockwise, then anti-clockwise") == "spins clockwise, then clockwise"
    text = "someone kicks with the left leg"
    assert mirror_caption(mirror_caption(text)) == text
