"""A corpus of short children's stories that llmnb builds itself: pretraining data with no download.

    from llmnb.datasets.stories import build_corpus
    stories = build_corpus()                      # ~400,000 characters, about 800 stories
    stories = build_corpus(n_chars=50_000, seed=1)

Data card
---------
* **What it is.** Short English stories in the style of TinyStories (Eldan & Li, 2023): a child
  or an animal, a place, an object, a small problem, a friend who helps, a feeling, an ending.
  Each story is one document (a `str`) of 4 to 12 sentences, with dialogue in double quotes.
* **How it is made.** By the seeded generator in this module, from a hand-written grammar and a
  hand-written vocabulary of about 400 words (names, animals, places, objects, actions,
  feelings, weather, times of day). Nothing was copied from any data set or web page; no model
  wrote any of it. The same `seed` and `n_chars` always give the same list, on every machine
  and Python version (only `random.Random` with an integer seed is used).
* **Size.** As much as asked: stories are added until the total length reaches `n_chars`
  (default 400,000 characters, about 800 stories, built in well under a second).
* **Structure, on purpose.** Characters keep their name and pronoun through a story, objects
  reappear after they are introduced, and stories follow a small number of plots with varied
  wording. This makes the text learnable by a 2-layer model in a minute (its validation
  perplexity falls from about the vocabulary size to under 10) while still showing what a
  language model picks up first: spelling, then word order, then agreement and story shape.
* **Limits.** Tiny vocabulary, simple grammar, no facts about the world, a cheerful tone only.
  A model pretrained on it writes stories like these and nothing else. Names are a mix of
  common English first names; all characters are fictional.
* **Licence.** Same as llmnb itself (the generator and its output).
* **Intended use.** Teaching and testing pretraining (tokenizer training, a small GPT, loss and
  perplexity curves, sampling) on a laptop CPU. Not for evaluating real language models.
"""
from __future__ import annotations

import random

DEFAULT_CHARS = 400_000

GIRLS = ["Lily", "Mia", "Anna", "Zoe", "Emma", "Sara", "Lucy", "Ella", "Rosa", "Nora", "Amy", "Ruby", "Ivy", "Maya", "Kate"]
BOYS = ["Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Tim", "Finn", "Omar", "Noah", "Dan", "Luke", "Hugo", "Eli", "Ravi"]
# (kind, sound it makes, what it likes to do)
ANIMALS = [
    ("dog", "barked", "run after sticks"),
    ("cat", "meowed", "sleep in the sun"),
    ("bird", "sang", "fly over the trees"),
    ("rabbit", "squeaked", "hop in the grass"),
    ("duck", "quacked", "swim in the pond"),
    ("frog", "croaked", "jump from leaf to leaf"),
    ("bear", "growled", "eat honey"),
    ("fox", "yipped", "hide in the bushes"),
    ("mouse", "squeaked", "look for cheese"),
    ("owl", "hooted", "watch the stars"),
    ("pig", "oinked", "roll in the mud"),
    ("lamb", "bleated", "play in the field"),
]
SIZES = ["little", "big", "small", "tiny", "fluffy", "happy", "shy", "brave", "kind", "silly", "old", "young"]
COLORS = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "brown", "white", "shiny"]
# (place, preposition used with it, something found there)
PLACES = [
    ("park", "in", "a tall tree"),
    ("garden", "in", "the flowers"),
    ("forest", "in", "a big rock"),
    ("beach", "on", "the sand"),
    ("kitchen", "in", "the table"),
    ("school", "at", "the door"),
    ("river", "by", "the water"),
    ("hill", "on", "the grass"),
    ("farm", "on", "the barn"),
    ("town", "in", "the shop"),
    ("lake", "by", "the boats"),
    ("yard", "in", "the fence"),
]
# (object, a word for playing with it)
OBJECTS = [
    ("ball", "kick"),
    ("kite", "fly"),
    ("box", "open"),
    ("hat", "wear"),
    ("cake", "share"),
    ("book", "read"),
    ("boat", "sail"),
    ("drum", "play"),
    ("doll", "hug"),
    ("car", "push"),
    ("shell", "hold"),
    ("bike", "ride"),
    ("balloon", "hold"),
    ("flower", "smell"),
    ("map", "read"),
    ("key", "keep"),
]
ACTIVITIES = [
    "play outside", "draw pictures", "sing songs", "build towers", "look at the clouds", "dance",
    "climb trees", "read books", "help mom", "help dad", "pick flowers", "splash in puddles",
    "count the stars", "bake cookies", "run fast", "tell jokes",
]
GOOD_FEELINGS = ["happy", "glad", "excited", "proud", "calm", "thankful"]
BAD_FEELINGS = ["sad", "scared", "worried", "upset", "lonely", "angry"]
TIMES = ["morning", "afternoon", "evening", "day"]
WEATHER = ["sunny", "windy", "rainy", "cold", "warm", "snowy"]
PROBLEMS = [
    "the {obj} fell into the water",
    "the wind took the {obj} away",
    "the {obj} got stuck in a tree",
    "a big dog ran off with the {obj}",
    "the {obj} broke into two pieces",
    "{sub} could not find the {obj}",
]
FIXES = [
    "{friend} had an idea. {fsub_cap} found a long stick and got the {obj} back.",
    "{friend} climbed up and brought the {obj} down.",
    "{friend} looked everywhere and found the {obj} under a leaf.",
    "{friend} and {name} fixed the {obj} with some tape.",
    "{friend} ran very fast and caught the {obj}.",
    "{friend} asked a kind old man for help, and he gave the {obj} back.",
]
MORALS = [
    "From that day on, {name} always shared {pos} toys.",
    "{name} learned that friends help each other.",
    "{name} learned that it is good to be kind.",
    "{name} learned to be careful with {pos} things.",
    "{name} and {friend} became best friends.",
    "After that, {name} was never {bad} again.",
]
ENDINGS = [
    "They played together until the sun went down.",
    "Then they went home to eat dinner.",
    "That night, {name} went to sleep with a big smile.",
    "It was the best {time} ever.",
    "They laughed and laughed.",
]
SAYS = ["said", "asked", "shouted", "cried", "whispered", "answered"]


class _Story:
    """One story's cast and props, so names, pronouns and objects stay consistent."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.name, self.sub, self.obj_pron, self.pos = self._person()
        while True:
            friend = self._person()
            if friend[0] != self.name:
                break
        self.friend, self.fsub, self.fobj, self.fpos = friend
        self.animal, self.sound, self.animal_likes = rng.choice(ANIMALS)
        self.place, self.prep, self.spot = rng.choice(PLACES)
        self.obj, self.verb = rng.choice(OBJECTS)
        self.color = rng.choice(COLORS)
        self.size = rng.choice(SIZES)
        self.good = rng.choice(GOOD_FEELINGS)
        self.bad = rng.choice(BAD_FEELINGS)
        self.time = rng.choice(TIMES)
        self.weather = rng.choice(WEATHER)
        self.activity = rng.choice(ACTIVITIES)
        # The hero is sometimes an animal: "a little dog named Max".
        self.hero_is_animal = rng.random() < 0.3
        self.at_place = False  # the story is already at its place
        self.has_obj = False  # the object was already introduced
        self.has_pet = False  # the hero's pet came along

    def _person(self):
        if self.rng.random() < 0.5:
            return self.rng.choice(GIRLS), "she", "her", "her"
        return self.rng.choice(BOYS), "he", "him", "his"

    def fill(self, template: str) -> str:
        values = {
            "name": self.name, "sub": self.sub, "sub_cap": self.sub.capitalize(), "obj_p": self.obj_pron,
            "pos": self.pos, "pos_cap": self.pos.capitalize(), "friend": self.friend, "fsub": self.fsub,
            "fsub_cap": self.fsub.capitalize(), "fobj": self.fobj, "fpos": self.fpos, "animal": self.animal,
            "sound": self.sound, "place": self.place, "prep": self.prep, "spot": self.spot, "obj": self.obj,
            "verb": self.verb, "color": self.color, "size": self.size, "good": self.good, "bad": self.bad,
            "time": self.time, "weather": self.weather, "activity": self.activity,
            "animal_likes": self.animal_likes,
        }
        return template.format(**values)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _opening(s: _Story) -> list[str]:
    rng = s.rng
    if s.hero_is_animal:
        return [
            s.fill(f"Once upon a time, there was {_article(s.size)} {{size}} {{animal}} named {{name}}."),
            s.fill("{name} liked to {animal_likes}."),
        ]
    first = rng.choice([
        "Once upon a time, there was {article} {size} girl named {name}." if s.sub == "she" else
        "Once upon a time, there was {article} {size} boy named {name}.",
        "One {weather} {time}, {name} went to the {place}.",
        "{name} was {article} {size} " + ("girl" if s.sub == "she" else "boy") + " who loved to {activity}.",
        "There was once a child named {name} who lived near a {place}.",
    ])
    s.at_place = "{place}" in first  # the middle then does not walk there a second time
    lines = [s.fill(first.replace("{article}", _article(s.size)))]
    if rng.random() < 0.6:
        second = rng.choice([
            "{sub_cap} liked to {activity} every day.",
            f"{{sub_cap}} had {_article(s.color)} {{color}} {{obj}} that {{sub}} loved very much.",
            "{pos_cap} mom said, \"Be good and have fun.\"",
            "It was a {weather} day, and {name} felt {good}.",
        ])
        s.has_obj = "{obj}" in second
        lines.append(s.fill(second))
    return lines


def _middle(s: _Story) -> list[str]:
    rng = s.rng
    lines = []
    if not s.at_place:
        going = rng.choice([
            "One day, {name} went to the {place} to {activity}.",
            "One {time}, {name} walked to the {place}.",
            "On a {weather} day, {name} and {pos} {animal} went to the {place}.",
        ])
        s.has_pet = "{animal}" in going and not s.hero_is_animal
        lines.append(s.fill(going))
    if s.has_obj:
        lines.append(s.fill(rng.choice([
            "{sub_cap} took {pos} {obj} to play with.",
            "{sub_cap} liked to {verb} {pos} {obj} there.",
        ])))
    else:
        lines.append(s.fill(rng.choice([
            f"{s.prep.capitalize()} the {{place}}, {{sub}} found {_article(s.color)} {{color}} {{obj}} near {{spot}}.",
            f"{{sub_cap}} saw {_article(s.color)} {{color}} {{obj}} by {{spot}}.",
            f"{{name}} had {_article(s.color)} {{color}} {{obj}}. {{sub_cap}} liked to {{verb}} it.",
        ])))
    lines.append(s.fill(rng.choice([
        "\"Look at my {obj}!\" {name} said to {friend}.",
        "Then {sub} met {friend}. {fsub_cap} was sitting alone and looked {bad}.",
        "{friend} came to the {place} too. \"Can I {verb} your {obj}?\" {fsub} asked.",
        "{name} saw {friend} sitting by {spot}. {fsub_cap} looked {bad}.",
    ])))
    if rng.random() < 0.6:
        lines.append(s.fill(rng.choice([
            "\"Do you want to play with me?\" {name} asked. \"Yes, please!\" {friend} said.",
            "{name} smiled and said, \"We can {verb} the {obj} together.\"",
            "\"Thank you,\" said {friend}. \"You are very kind.\"",
            "At first {name} did not want to share. Then {sub} saw that {friend} was {bad}, so {sub} shared.",
        ])))
    problem = rng.choice(PROBLEMS).format(obj=s.obj, sub=s.name)
    lines.append(rng.choice(["But then, ", "Suddenly, ", "All of a sudden, ", "Oh no! "]) + problem + ".")
    worry = [
        "{name} felt very {bad}. {sub_cap} began to cry.",
        "\"What can we do?\" {name} " + rng.choice(SAYS) + ".",
        "{name} was {bad}. {sub_cap} did not know what to do.",
    ]
    if s.hero_is_animal:
        worry.append("{name} {sound} loudly.")
    elif s.has_pet:
        worry.append("The {animal} {sound} loudly.")
    lines.append(s.fill(rng.choice(worry)))
    lines.append(s.fill(rng.choice(FIXES)))
    lines.append(s.fill(rng.choice([
        "\"Thank you, {friend}!\" {name} said. {sub_cap} felt {good} again.",
        "{name} hugged {friend}. Now {sub} was {good}.",
        "{name} was so {good}. \"You are my best friend,\" {sub} said.",
    ])))
    return lines


def _ending(s: _Story) -> list[str]:
    rng = s.rng
    lines = [s.fill(rng.choice(ENDINGS))]
    if rng.random() < 0.5:
        lines.append(s.fill(rng.choice(MORALS)))
    if rng.random() < 0.3:
        lines.append("The end.")
    return lines


def make_story(rng: random.Random) -> str:
    """One story from `rng` (a `random.Random`)."""
    story = _Story(rng)
    return " ".join(_opening(story) + _middle(story) + _ending(story))


def build_corpus(n_chars: int = DEFAULT_CHARS, seed: int = 0) -> list[str]:
    """Stories (one `str` each) until their total length reaches `n_chars`; same seed, same list.

    The total is at least `n_chars` and exceeds it by less than one story (under 1,500
    characters). See the module docstring for the data card.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb) and chapter 6 (tutorials/06_applications.ipynb).
    """
    from llmnb.errors import ConfigError

    if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 1:
        raise ConfigError(f"n_chars={n_chars!r} must be a whole number >= 1 (characters of text to build).")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be a whole number.")
    rng = random.Random(seed)
    stories, total = [], 0
    while total < n_chars:
        story = make_story(rng)
        stories.append(story)
        total += len(story)
    return stories
