"""Natural-language captions made from Bandai-Namco content and style labels.

The Bandai-Namco Research Motion Dataset labels each take with a content (what is done,
e.g. ``walk-left``) and a style (how, e.g. ``tired``) but has no captions. Text-to-motion
training needs sentences, and the text encoder must later cope with paraphrases it never
saw, so each clip gets several captions that vary the wording (synonyms, sentence frames,
subjects) while saying only what the labels say: the content as a verb phrase, the style
as an adjective, adverb, trailing clause or subject noun. Captions are lower case and end
in a period, like HumanML3D's.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class StylePhrases:
    """Ways of saying one style.

    ``adjectives`` go before a noun ("a *tired* person"); ``adverbs`` follow a verb phrase
    or open the sentence ("... *wearily*"); ``clauses`` follow a comma ("..., *looking
    exhausted*"); ``subjects`` are whole noun phrases that carry the style ("*an old man*").
    None of them names a direction (left, right, back, forward, turn), so a style can never
    contradict the content's direction.
    """

    adjectives: tuple[str, ...]
    adverbs: tuple[str, ...]
    clauses: tuple[str, ...]
    subjects: tuple[str, ...]
    # "normal" may also be left unsaid: "a person walks forward." is a faithful caption
    plain_ok: bool = False


# Third-person singular verb phrases, without adverbs of manner: the style supplies those,
# and two stacked adverbs ("dances briefly happily") read badly. Phrases mention no
# "someone", since the subject may itself be "someone".
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    # dataset-1
    "walk": ("walks forward", "walks straight ahead", "walks ahead",
             "moves forward at a walking pace", "takes a walk forward"),
    "run": ("runs forward", "runs straight ahead", "runs ahead", "jogs forward",
            "moves forward at a run"),
    "dash": ("dashes forward", "sprints forward", "dashes ahead at full speed",
             "sprints straight ahead", "rushes forward at top speed"),
    "walk-back": ("walks backward", "walks backwards", "steps backward",
                  "takes steps backward", "moves backward at a walking pace"),
    "walk-left": ("walks to the left", "walks sideways to the left", "walks leftward",
                  "steps sideways toward the left", "moves to the left at a walking pace"),
    "walk-right": ("walks to the right", "walks sideways to the right", "walks rightward",
                   "steps sideways toward the right", "moves to the right at a walking pace"),
    "bow": ("bows", "takes a bow", "gives a bow", "bends at the waist in a bow",
            "bows from the waist"),
    "bye": ("waves goodbye with one hand", "waves a hand to say goodbye",
            "says goodbye with a wave of one hand", "waves farewell with one hand"),
    "guide": ("gestures with an arm to show the way", "points the way with an open hand",
              "shows the way with a sweep of the arm",
              "motions with one arm to lead the way"),
    "byebye": ("waves goodbye with both hands", "waves both hands to say goodbye",
               "says goodbye by waving both arms widely", "waves farewell with both arms"),
    "respond": ("responds to a call by raising a hand", "raises a hand in reply",
                "acknowledges another person with a nod and a raised hand",
                "answers a greeting with a small gesture"),
    "call": ("beckons another person over", "calls a friend over with a wave of the hand",
             "waves a hand to call another person closer",
             "motions for another person to come over"),
    "punch": ("throws a punch", "punches the air", "strikes with a fist", "delivers a punch"),
    "kick": ("kicks", "throws a kick", "kicks the air", "delivers a kick with one leg"),
    "slash": ("slashes with a sword", "swings a sword in a slash",
              "cuts through the air with a sword", "makes a slashing strike with a sword"),
    "dance-long": ("performs a long dance", "dances for a long while",
                   "does an extended dance routine", "dances through a lengthy routine"),
    "dance-short": ("performs a short dance", "does a brief dance",
                    "dances a short routine", "does a quick little dance"),
    # dataset-2
    "walk-turn-left": ("walks and turns left", "walks forward and then turns to the left",
                       "walks while turning to the left", "turns left while walking",
                       "walks and makes a left turn"),
    "walk-turn-right": ("walks and turns right", "walks forward and then turns to the right",
                        "walks while turning to the right", "turns right while walking",
                        "walks and makes a right turn"),
    "wave-both-hands": ("waves both hands", "waves with both hands",
                        "waves both hands in the air", "raises both hands and waves them"),
    "wave-left-hand": ("waves the left hand", "waves with the left hand",
                       "raises the left hand and waves", "waves the left hand in the air"),
    "wave-right-hand": ("waves the right hand", "waves with the right hand",
                        "raises the right hand and waves", "waves the right hand in the air"),
    "raise-up-both-hands": ("raises both hands", "raises both hands up",
                            "lifts both arms overhead", "puts both hands up in the air"),
    "raise-up-left-hand": ("raises the left hand", "raises the left hand up",
                           "lifts the left arm overhead", "puts the left hand up in the air"),
    "raise-up-right-hand": ("raises the right hand", "raises the right hand up",
                            "lifts the right arm overhead",
                            "puts the right hand up in the air"),
}

_MASCULINE = StylePhrases(
    adjectives=("masculine", "manly", "macho"),
    adverbs=("in a masculine way", "in a manly manner", "with a macho air"),
    clauses=("moving in a masculine way", "with a strong, manly posture",
             "showing a masculine demeanor"),
    subjects=("a masculine man", "a macho man", "a manly person"),
)
_ELDERLY = StylePhrases(
    adjectives=("old", "elderly", "aged", "frail"),
    adverbs=("like an old person", "in an elderly manner", "stiffly", "feebly"),
    clauses=("moving like an elderly person", "hunched over with age",
             "showing signs of old age"),
    subjects=("an old man", "an elderly woman", "an old person", "an elderly person",
              "a senior citizen"),
)
_TIRED = StylePhrases(
    adjectives=("tired", "exhausted", "weary", "worn-out", "fatigued"),
    adverbs=("wearily", "tiredly", "sluggishly", "in an exhausted way"),
    clauses=("looking exhausted", "clearly worn out", "barely able to keep going",
             "visibly fatigued"),
    subjects=("a tired man", "an exhausted person", "a weary woman"),
)

STYLE_PHRASES: dict[str, StylePhrases] = {
    "normal": StylePhrases(
        adjectives=("ordinary", "regular", "typical"),
        adverbs=("normally", "in an ordinary way", "in a regular manner", "naturally"),
        clauses=("in a normal, everyday manner", "without any particular style",
                 "in a natural way"),
        subjects=("an ordinary person", "a regular person", "a person"),
        plain_ok=True,
    ),
    "happy": StylePhrases(
        adjectives=("happy", "cheerful", "joyful", "upbeat"),
        adverbs=("happily", "cheerfully", "joyfully", "in a cheerful mood"),
        clauses=("looking happy", "beaming with joy", "clearly in a good mood",
                 "full of joy"),
        subjects=("a cheerful person", "a happy man", "a joyful woman"),
    ),
    "sad": StylePhrases(
        adjectives=("sad", "sorrowful", "gloomy", "downcast", "dejected"),
        adverbs=("sadly", "gloomily", "sorrowfully", "dejectedly"),
        clauses=("looking sad", "head hung low", "with a heavy heart",
                 "appearing downcast"),
        subjects=("a sad person", "a gloomy man", "a sorrowful woman"),
    ),
    "angry": StylePhrases(
        adjectives=("angry", "furious", "irritated", "enraged"),
        adverbs=("angrily", "furiously", "in an angry manner", "irritably"),
        clauses=("looking angry", "visibly irritated", "fuming with anger",
                 "in a fit of rage"),
        subjects=("an angry man", "a furious person", "an irritated woman"),
    ),
    "proud": StylePhrases(
        adjectives=("proud", "self-assured", "dignified", "haughty"),
        adverbs=("proudly", "with pride", "in a dignified manner", "haughtily"),
        clauses=("chest puffed out", "head held high", "full of pride",
                 "looking very proud"),
        subjects=("a proud man", "a dignified woman", "a proud person"),
    ),
    "not-confident": StylePhrases(
        adjectives=("timid", "shy", "hesitant", "insecure", "unsure"),
        adverbs=("timidly", "hesitantly", "shyly", "without confidence"),
        clauses=("lacking confidence", "looking unsure", "seeming hesitant",
                 "as if unsure"),
        subjects=("a timid person", "a shy man", "a nervous woman", "an insecure person"),
    ),
    "masculinity": _MASCULINE,
    "masculine": _MASCULINE,
    "feminine": StylePhrases(
        adjectives=("feminine", "ladylike", "graceful"),
        adverbs=("in a feminine way", "in a ladylike manner", "gracefully", "daintily"),
        clauses=("moving in a feminine manner", "with graceful, feminine movements",
                 "showing a feminine demeanor"),
        subjects=("a feminine woman", "a graceful lady", "a ladylike person"),
    ),
    "childish": StylePhrases(
        adjectives=("childish", "childlike", "playful"),
        adverbs=("childishly", "like a child", "in a childlike way", "playfully"),
        clauses=("acting like a child", "behaving childishly", "full of childlike energy"),
        subjects=("a child", "a little kid", "a young child"),
    ),
    "old": _ELDERLY,
    "elderly": _ELDERLY,
    "tired": _TIRED,
    "exhausted": _TIRED,
    "active": StylePhrases(
        adjectives=("active", "energetic", "lively", "vigorous", "spirited"),
        adverbs=("energetically", "vigorously", "with lots of energy", "in a lively way"),
        clauses=("full of energy", "moving with vigor", "brimming with energy"),
        subjects=("an energetic person", "a lively man", "an active woman"),
    ),
    "musical": StylePhrases(
        adjectives=("theatrical", "dramatic", "showy", "flamboyant"),
        adverbs=("theatrically", "dramatically", "with theatrical flair",
                 "like a performer in a musical"),
        clauses=("as if performing in a stage musical", "like an actor in a musical",
                 "with exaggerated, theatrical movements"),
        subjects=("a musical performer", "a stage performer", "a musical theater actor"),
    ),
    "giant": StylePhrases(
        adjectives=("giant", "hulking", "lumbering", "heavy-footed", "huge"),
        adverbs=("like a giant", "heavily", "ponderously", "in a lumbering way"),
        clauses=("moving like a giant", "heavy and lumbering like a giant",
                 "with the ponderous bulk of a giant"),
        subjects=("a giant", "a lumbering giant", "a hulking figure", "a huge, heavy man"),
    ),
    # chimpira: Japanese for a small-time thug or street punk
    "chimpira": StylePhrases(
        adjectives=("thuggish", "swaggering", "cocky", "delinquent"),
        adverbs=("like a street thug", "with a swagger", "in a thuggish manner", "cockily"),
        clauses=("swaggering like a street punk", "acting like a small-time thug",
                 "with a cocky, thuggish attitude"),
        subjects=("a street thug", "a young punk", "a small-time thug", "a delinquent"),
    ),
    "youthful": StylePhrases(
        adjectives=("youthful", "young", "spry", "sprightly"),
        adverbs=("youthfully", "in a youthful way", "like a young person", "spryly"),
        clauses=("full of youthful energy", "moving like a young person",
                 "with youthful vigor"),
        subjects=("a young person", "a youthful man", "a young woman"),
    ),
}

# Neutral subjects for frames where the style is carried elsewhere in the sentence.
_SUBJECTS = ("a person", "someone", "somebody", "a man", "a woman", "the character",
             "the person", "a figure", "an individual")
# Nouns an adjective can qualify ("a tired ___").
_NOUNS = ("person", "man", "woman", "character", "figure", "individual")

# Sentence frames. The core five carry the style in five different ways and come first in
# every call (in a seeded order), so even five captions span five sentence structures;
# the extras follow.
_CORE_FRAMES = (
    "{a_adj} {noun} {vp}.",
    "{subj} {vp} {adv}.",
    "{subj} {vp}, {clause}.",
    "{adv}, {subj} {vp}.",
    "{style_subj} {vp}.",
)
_EXTRA_FRAMES = (
    "{subj} {ly} {vp}.",
    "{a_adj} {noun} {vp}, {clause}.",
    "{style_subj} {vp}, {clause}.",
)
_PLAIN_FRAME = "{subj} {vp}."

_PREFIX = re.compile(r"^dataset-\d+_")


def label_from_cfg(name: str) -> str:
    """A label as the cfg files spell it, less its ``dataset-N_`` prefix.

    ``"dataset-1_walk-back"`` -> ``"walk-back"``; a name without the prefix is returned
    unchanged (apart from surrounding whitespace).
    """
    return _PREFIX.sub("", name.strip())


def known_contents() -> set[str]:
    """Every content label :func:`make_captions` accepts (both dataset halves)."""
    return set(CONTENT_PHRASES)


def known_styles() -> set[str]:
    """Every style label :func:`make_captions` accepts (both dataset halves)."""
    return set(STYLE_PHRASES)


def _with_article(phrase: str) -> str:
    """``phrase`` preceded by "a" or "an", judged by its first letters' sound."""
    first = phrase.split()[0]
    # a "u" that sounds like "you" (unique, useful) takes "a"; other vowels take "an"
    vowel = first[0] in "aeio" or (first[0] == "u"
                                   and not first.startswith(("uni", "use", "usu")))
    return ("an " if vowel else "a ") + phrase


def _check(label: str, kind: str, known: set[str]) -> None:
    if label not in known:
        raise ValueError(f"unknown {kind} label {label!r}; known {kind} labels: "
                         f"{', '.join(sorted(known))}")


class _Deck:
    """Draws from a pool without repeats until it runs out, then reshuffles.

    Within one call this spreads the wording over the whole pool (different verb phrases,
    subjects, adverbs...) instead of letting independent draws repeat one.
    """

    def __init__(self, pool: tuple[str, ...], rng: random.Random) -> None:
        self._pool, self._rng, self._left = pool, rng, list[str]()

    def draw(self) -> str:
        if not self._left:
            self._left = list(self._pool)
            self._rng.shuffle(self._left)
        return self._left.pop()


def _ly_adverbs(style: StylePhrases) -> tuple[str, ...]:
    # single-word "-ly" adverbs are the ones that read well before the verb
    return tuple(a for a in style.adverbs if " " not in a and a.endswith("ly"))


def make_captions(content: str, style: str, *, n: int = 6, seed: int | str = 0) -> list[str]:
    """``n`` distinct captions for a clip labelled ``content`` performed in ``style``.

    Deterministic for a given (content, style, seed): the generator is seeded from a
    CRC-32 of those (never the salted built-in ``hash``), and a larger ``n`` extends a
    smaller one's list. The first five use five different sentence frames (adjective,
    trailing adverb, trailing clause, fronted adverb, styled subject, in a seeded order),
    and each slot draws from its pool without repeats, so the wording varies too. Raises
    ValueError for an unknown label, for ``n < 1``, or if ``n`` exceeds the phrasings
    there are.
    """
    _check(content, "content", known_contents())
    _check(style, "style", known_styles())
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    phrases = STYLE_PHRASES[style]
    rng = random.Random(zlib.crc32(f"{content}|{style}|{seed}".encode()))
    core = list(_CORE_FRAMES)
    extra = [f for f in _EXTRA_FRAMES if "{ly}" not in f or _ly_adverbs(phrases)]
    if phrases.plain_ok:
        extra.append(_PLAIN_FRAME)
    rng.shuffle(core)
    rng.shuffle(extra)
    frames = core + extra
    decks = {
        "vp": _Deck(CONTENT_PHRASES[content], rng),
        "a_adj": _Deck(tuple(_with_article(a) for a in phrases.adjectives), rng),
        "noun": _Deck(_NOUNS, rng),
        "adv": _Deck(phrases.adverbs, rng),
        "clause": _Deck(phrases.clauses, rng),
        "subj": _Deck(_SUBJECTS, rng),
        "style_subj": _Deck(phrases.subjects, rng),
        "ly": _Deck(_ly_adverbs(phrases) or ("",), rng),
    }
    out: list[str] = []
    seen: set[str] = set()
    # a repeat is possible once a deck wraps round; the attempt cap only guards against
    # asking for more captions than the phrase tables can produce
    for i in range(200 * n):
        frame = frames[i % len(frames)]
        # only the slots the frame uses are drawn, so unused slots keep their turn
        slots = {k: d.draw() for k, d in decks.items() if "{" + k + "}" in frame}
        caption = frame.format(**slots)
        if caption not in seen:
            seen.add(caption)
            out.append(caption)
            if len(out) == n:
                return out
    raise ValueError(f"could not make {n} distinct captions for {content!r} x {style!r}; "
                     f"got {len(out)}")
