"""Sentence pairs for sequence-to-sequence training: English present tense -> past tense.

    from llmnb.datasets.tense import build_pairs
    pairs = build_pairs(1000, seed=0)       # a DataFrame with columns source, target
    llmnb.datasets.load("tense")            # the bundled train split (made by build_pairs)
    llmnb.datasets.load("tense", "test")    # the bundled test split

Used by tutorials/04_math.ipynb (case 2 of chapter 4.3: translation as seq2seq fine-tuning).

Data card
---------
* **What it is.** Pairs of short English sentences. The `source` is about the present ("Tom
  eats an apple in the garden today."), the `target` says the same about the past ("Tom ate an
  apple in the garden yesterday."). It is a translation-like task with a checkable answer:
  verbs move to the past tense (regular *-ed*, about twenty irregular verbs, *is/are* ->
  *was/were*, *does not* -> *did not* with the bare verb kept), and some time phrases move back
  (*today* -> *yesterday*, *this week* -> *last week*, *now* -> *then*); everything else is copied.
  Because most words are copied, returning the source unchanged already scores a BLEU of about
  40, so a model has to do better than copying to show that it learned the rewrite.
* **How it is made.** By the seeded generator in this module, from hand-written templates and
  a hand-written vocabulary (names, pronouns, about 35 verbs with objects that suit them,
  places, time phrases). Nothing was copied from a data set or web page and no model wrote any
  of it. The same `n` and `seed` give the same pairs on every machine (only `random.Random`
  with an integer seed is used). Sentences are unique within a call.
* **Bundled splits.** `tense_train.csv` (2,000 pairs) and `tense_test.csv` (200 pairs) in
  `llmnb/datasets/data/`, written by `write_bundled()`; no test source appears in train. Both
  use the same vocabulary: the test measures new combinations, not new words.
* **Limits.** A tiny grammar: one clause, or two joined by *and*, simple present and present
  continuous only, no questions. It teaches and tests seq2seq training; it says nothing about
  real translation quality.
* **Licence.** Same as llmnb (the generator and its output).
"""
from __future__ import annotations

import random
from pathlib import Path

from llmnb.errors import ConfigError, DataError

# Subjects: (text, person) where person is "3s" (he/she/it, one name), "pl" (I, you, we, they,
# plural nouns) or "i" ("I": "am" in the present, "was" in the past).
NAMES = ["Tom", "Mia", "Sam", "Anna", "Leo", "Zoe", "Ben", "Lucy", "Omar", "Nora", "Max", "Ella", "Ravi", "Ivy", "Jack", "Rosa"]
SUBJECTS = [(n, "3s") for n in NAMES] + [
    ("he", "3s"), ("she", "3s"), ("my sister", "3s"), ("the old man", "3s"), ("our teacher", "3s"), ("the cook", "3s"),
    ("I", "i"), ("you", "pl"), ("we", "pl"), ("they", "pl"), ("the children", "pl"), ("my parents", "pl"),
    ("the students", "pl"), ("our neighbours", "pl"),
]
# Transitive verbs: base, third person singular, past, -ing form, objects that fit.
TRANSITIVE = [
    ("eat", "eats", "ate", "eating", ["an apple", "the soup", "some bread", "a sandwich", "the cake", "rice"]),
    ("drink", "drinks", "drank", "drinking", ["tea", "some milk", "a glass of water", "the juice", "coffee"]),
    ("read", "reads", "read", "reading", ["a book", "the paper", "a letter", "the map", "a long story"]),
    ("write", "writes", "wrote", "writing", ["a letter", "a poem", "the list", "a short note", "a story"]),
    ("cook", "cooks", "cooked", "cooking", ["dinner", "the soup", "some rice", "lunch", "the fish"]),
    ("buy", "buys", "bought", "buying", ["bread", "a hat", "new shoes", "the tickets", "a present", "some flowers"]),
    ("watch", "watches", "watched", "watching", ["a film", "the birds", "the game", "the stars", "the news"]),
    ("play", "plays", "played", "playing", ["football", "the piano", "chess", "a game", "cards", "the guitar"]),
    ("clean", "cleans", "cleaned", "cleaning", ["the kitchen", "the car", "the windows", "the room", "the floor"]),
    ("open", "opens", "opened", "opening", ["the door", "the window", "the box", "a present", "the shop"]),
    ("carry", "carries", "carried", "carrying", ["the bags", "a box", "the chairs", "a heavy basket"]),
    ("find", "finds", "found", "finding", ["the keys", "a coin", "the cat", "a shell", "the map"]),
    ("make", "makes", "made", "making", ["a cake", "tea", "a kite", "dinner", "a plan", "a mess"]),
    ("sing", "sings", "sang", "singing", ["a song", "an old song", "a lullaby"]),
    ("paint", "paints", "painted", "painting", ["the fence", "a picture", "the door", "the wall"]),
    ("take", "takes", "took", "taking", ["the bus", "the train", "a photo", "a nap", "the dog out"]),
    ("wash", "washes", "washed", "washing", ["the dishes", "the car", "the dog", "the cups"]),
    ("bring", "brings", "brought", "bringing", ["the cake", "some flowers", "the keys", "a friend"]),
    ("catch", "catches", "caught", "catching", ["the ball", "the bus", "a fish", "the train", "a cold"]),
    ("fix", "fixes", "fixed", "fixing", ["the bike", "the roof", "the lamp", "the old clock"]),
    ("sell", "sells", "sold", "selling", ["apples", "the car", "old books", "fresh eggs"]),
    ("draw", "draws", "drew", "drawing", ["a map", "a picture", "a cat", "a house"]),
    ("visit", "visits", "visited", "visiting", ["the museum", "a friend", "the zoo", "grandma"]),
    ("like", "likes", "liked", "liking", ["the rain", "the music", "the new teacher", "cold weather"]),
    ("need", "needs", "needed", "needing", ["help", "a new coat", "more time", "a break"]),
]
# Intransitive verbs: base, third person singular, past, -ing form, places that fit.
INTRANSITIVE = [
    ("go", "goes", "went", "going", ["to the market", "to school", "to the beach", "home", "to the library"]),
    ("walk", "walks", "walked", "walking", ["to the park", "along the river", "to school", "home"]),
    ("run", "runs", "ran", "running", ["in the park", "to the station", "along the beach", "home"]),
    ("swim", "swims", "swam", "swimming", ["in the lake", "in the sea", "in the pool"]),
    ("sit", "sits", "sat", "sitting", ["by the window", "in the garden", "on the bench", "at the back"]),
    ("sleep", "sleeps", "slept", "sleeping", ["on the sofa", "in the tent", "at home", "in the car"]),
    ("wait", "waits", "waited", "waiting", ["at the station", "outside", "by the door", "for the bus"]),
    ("dance", "dances", "danced", "dancing", ["in the kitchen", "at the party", "in the street"]),
    ("work", "works", "worked", "working", ["at the bakery", "in the office", "in the garden", "at home"]),
    ("stay", "stays", "stayed", "staying", ["at home", "in bed", "with a friend", "at the hotel"]),
]
# Time phrases: present -> past. Some move back in time, some stay the same.
TIMES = [
    ("today", "yesterday"), ("tonight", "last night"), ("this week", "last week"), ("this summer", "last summer"),
    ("this year", "last year"), ("every day", "every day"), ("every morning", "every morning"),
    ("on Sundays", "on Sundays"), ("after school", "after school"), ("in the evening", "in the evening"),
]
NOW = ("now", "then")
STATIVE = {"like", "need"}  # verbs with no continuous form  # for the continuous ("is eating now" -> "was eating then")

BE = {"3s": ("is", "was"), "pl": ("are", "were"), "i": ("am", "was")}
DO = {"3s": ("does", "did"), "pl": ("do", "did"), "i": ("do", "did")}


def _present(verb, person):
    return verb[1] if person == "3s" else verb[0]


def _predicate(rng, verb):
    """The words after the verb: an object or a place."""
    return rng.choice(verb[4])


def _clause(rng, person):
    """(present, past) of one verb phrase for a subject of this person, in one of three shapes."""
    verb = rng.choice(TRANSITIVE if rng.random() < 0.7 else INTRANSITIVE)
    rest = _predicate(rng, verb)
    shape = rng.random()
    if shape < 0.6:  # simple: eats an apple -> ate an apple
        return f"{_present(verb, person)} {rest}", f"{verb[2]} {rest}", "simple"
    if shape < 0.8:  # negative: does not eat -> did not eat
        do_now, do_then = DO[person]
        return f"{do_now} not {verb[0]} {rest}", f"{do_then} not {verb[0]} {rest}", "negative"
    if verb[0] in STATIVE:  # "is liking" is not English: fall back to the simple shape
        return f"{_present(verb, person)} {rest}", f"{verb[2]} {rest}", "simple"
    be_now, be_then = BE[person]  # continuous: is eating -> was eating
    return f"{be_now} {verb[3]} {rest}", f"{be_then} {verb[3]} {rest}", "continuous"


def make_pair(rng: random.Random) -> tuple[str, str]:
    """One (present, past) sentence pair."""
    subject, person = rng.choice(SUBJECTS)
    now, then, shape = _clause(rng, person)
    if rng.random() < 0.25:  # two verb phrases: "eats an apple and drinks tea"
        now2, then2, _ = _clause(rng, person)
        now, then = f"{now} and {now2}", f"{then} and {then2}"
        shape = "double"
    time_now, time_then = NOW if shape == "continuous" and rng.random() < 0.5 else rng.choice(TIMES)
    if rng.random() < 0.3:  # time phrase first: "Today, Tom eats ..."
        source = f"{time_now[0].upper()}{time_now[1:]}, {subject} {now}."
        target = f"{time_then[0].upper()}{time_then[1:]}, {subject} {then}."
    else:
        first = subject[0].upper() + subject[1:]
        source, target = f"{first} {now} {time_now}.", f"{first} {then} {time_then}."
    return source, target


def build_pairs(n: int = 1000, seed: int = 0, exclude=()):
    """`n` distinct (source, target) pairs as a DataFrame with columns `source`, `target`.

    Sources in `exclude` (e.g. a test split's) are skipped, so splits never overlap.
    """
    import pandas as pd

    if n < 1:
        raise ConfigError(f"n={n} must be at least 1.")
    rng = random.Random(seed)
    seen, rows = set(exclude), []
    tries = 0
    while len(rows) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise DataError(f"Could not make {n} distinct pairs: the grammar is too small for that many.")
        source, target = make_pair(rng)
        if source in seen:
            continue
        seen.add(source)
        rows.append((source, target))
    return pd.DataFrame(rows, columns=["source", "target"])


TRAIN_SIZE, TEST_SIZE = 2000, 200
TEST_SEED, TRAIN_SEED = 1, 0


def bundled_splits():
    """(train, test) DataFrames exactly as shipped in llmnb/datasets/data/tense_*.csv."""
    test = build_pairs(TEST_SIZE, seed=TEST_SEED)
    train = build_pairs(TRAIN_SIZE, seed=TRAIN_SEED, exclude=set(test["source"]))
    return train, test


def write_bundled(folder=None) -> list[Path]:
    """Write tense_train.csv and tense_test.csv (the bundled files) into `folder`."""
    folder = Path(folder) if folder else Path(__file__).parent / "data"
    train, test = bundled_splits()
    paths = [folder / "tense_train.csv", folder / "tense_test.csv"]
    for frame, path in zip((train, test), paths):
        frame.to_csv(path, index=False)
    return paths


# ---------------------------------------------------------------------- a small model for the pairs
SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2: padding (and decoder start), end of sentence, unknown


def word_tokenizer(texts):
    """A word-level tokenizer over the words of `texts`: lower-cased, punctuation split off, "</s>"
    added at the end of every encoded text (an encoder-decoder needs it to learn where to stop).

    Every word of a closed vocabulary is one token, so a tiny model has ~250 output classes to
    predict instead of the 30,522 of MiniLM's tokenizer: about 7x less compute per step.
    """
    import re

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", str(t).lower())})
    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # splits "apple." into "apple" "."
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", clean_up_tokenization_spaces=True
    )


def word_t5(texts, width: int = 64, layers: int = 2, heads: int = 2, seed: int = 0, device: str = "auto"):
    """A small T5 encoder-decoder with random weights and a `word_tokenizer` built from `texts`.

    Returns a `llmnb.LoadedModel` that `finetune(..., task="seq2seq")` and `%finetune` accept.
    The bundled `tiny-t5` has the same shape but MiniLM's 30,522-token vocabulary, whose input
    and output layers make up most of its weights and most of the work per step; for a data set
    with a few hundred distinct words this model learns the same task several times faster.
    Dropout is off: it slowed these short runs from scratch down (BLEU 56 instead of 84 after 600
    steps on the tense pairs). Used by tutorials/04_math.ipynb (case 2).

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """
    import torch
    import transformers

    from llmnb.core.models import LoadedModel, quiet_transformers, resolve_device

    tokenizer = word_tokenizer(texts)
    config = transformers.T5Config(
        vocab_size=len(tokenizer), d_model=width, d_kv=width // heads, d_ff=2 * width, num_layers=layers,
        num_heads=heads, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    with quiet_transformers():
        model = transformers.T5ForConditionalGeneration(config)
    return LoadedModel(model.to(resolve_device(device)), tokenizer, "word-t5", "seq2seq")
