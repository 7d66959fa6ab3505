"""Captions of mirrored motion: left and right swapped.

A mirror (HumanML3D's augmentation, and the text encoder ``minilm-sided``) turns "waves
the right hand" into "waves the left hand" and "turns clockwise" into "turns
counterclockwise"; every other word stays.
"""

from __future__ import annotations

import re

# the words a mirror swaps (HumanML3D's mirrored copies swap "left" and "right" too)
_MIRROR_WORDS = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
                 "leftwards": "rightwards", "rightwards": "leftwards",
                 "clockwise": "counterclockwise", "counterclockwise": "clockwise",
                 "anticlockwise": "clockwise", "counter-clockwise": "clockwise",
                 "anti-clockwise": "clockwise"}
_MIRROR_RE = re.compile(r"\b(" + "|".join(sorted(_MIRROR_WORDS, key=len, reverse=True)) + r")\b",
                        re.IGNORECASE)


def mirror_caption(text: str) -> str:
    """The caption of the motion seen in a mirror: left and right (and the senses of a
    turn) swapped, keeping each word's capitalisation."""
    def swap(m: re.Match) -> str:
        word = m.group(0)
        out = _MIRROR_WORDS[word.lower()]
        if word.isupper() and len(word) > 1:
            return out.upper()
        return out.capitalize() if word[0].isupper() else out
    return _MIRROR_RE.sub(swap, text)
