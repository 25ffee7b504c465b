"""Two small labelled data sets that llmnb generates on the spot, for tutorials/06_applications.ipynb.

    from llmnb.datasets.synthetic import booking_requests, rated_reviews
    bookings = booking_requests(64, split="train")   # messages + the name, day, time and party size in them
    ratings = rated_reviews(240, split="train")       # restaurant reviews + a 1-5 star rating

Both are labelled by construction: the generator chooses the answer first and then writes the
text around it, so every label is right by definition. Same `n`, `split` and `seed` give the
same rows on every machine (only `random.Random` with an integer seed is used).

Data card: `booking_requests`
-----------------------------
* **What it is.** Short messages asking a restaurant for a table (one to three sentences), with
  four columns holding what a booking system needs from each: `name` (the surname the table is
  booked under), `day` (a weekday), `time` (e.g. ``7:30pm`` or ``19:30``) and `people` (the party
  size, digits). Every answer appears in the message exactly as written in its column.
* **Distractors, on purpose.** About half the messages also mention a second value of the same
  kind that is *not* the answer: a day that does not suit ("We can't do Tuesday"), an old time
  ("move us from 6pm to 8pm"), last visit's party size, or a colleague's name. "Take the first
  weekday you see" is then wrong, so an extractor has to read the sentence.
* **Splits.** `train` and `test` use different sentence templates and different surnames, so
  the test set measures whether a model learned to read booking requests, not the templates.
* **Made by.** The llmnb developers wrote the templates and word lists by hand; nothing was
  copied from any data set. All names are common surnames; every person is fictional.
* **Limits.** Templated English, a few dozen phrasings, one-word answers only, no misspellings.
  For teaching extraction; not a benchmark.

Data card: `rated_reviews`
--------------------------
* **What it is.** Restaurant reviews of two to four sentences, each sentence about one aspect
  (food, service, price, atmosphere, waiting time) with a polarity of +1 (good), 0 (so-so) or
  -1 (bad), and a `rating` column: ``3 + sum of the polarities``, clipped to 1..5 stars. A
  rating is therefore a graded quantity: three good aspects beat one.
* **Splits.** Train and test reviews are new combinations of the same hand-written sentences
  (four phrasings per aspect and polarity). A review's split is fixed by a hash of its
  text, so no review is in both; a model must still add up sentences it has seen in other
  company.
* **Made by.** Written by the llmnb developers, phrasing by phrasing; no real reviews, no real
  restaurants. Licence: the same as llmnb.
* **Limits.** The rating is a deterministic function of the sentences, which real ratings are
  not; aspects never contradict themselves inside one sentence; British English.
"""
from __future__ import annotations

import random

from llmnb.errors import DataError

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["6pm", "6:30pm", "7pm", "7:30pm", "8pm", "8:30pm", "9pm", "12:30", "13:00", "18:30", "19:00", "19:30", "20:00", "1pm"]
SURNAMES = {
    "train": ["Patel", "Garcia", "Novak", "Okafor", "Murphy", "Chen", "Haddad", "Rossi", "Kowalski", "Silva",
              "Tanaka", "Dubois", "Jensen", "Byrne", "Costa", "Fischer", "Petrov", "Quinn", "Reyes", "Walsh"],
    "test": ["Yilmaz", "Abebe", "Bianchi", "Evans", "Hughes", "Ivanova", "Moreau", "Lindqvist", "Nakamura", "Schmidt",
             "Doyle", "Ferreira"],
}
FIELDS = ("name", "day", "time", "people")
# What each field asks, as a learner would put it (the extractor is trained with these words).
QUESTIONS = {"name": "Under what name?", "day": "Which day?", "time": "What time?", "people": "How many people?"}

# {name} {day} {time} {people} are the answers; {other_*} are distractors of the same kind.
BOOKING_TEMPLATES = {
    "train": [
        "Hi, could I book a table for {people} on {day} at {time}? The name is {name}.",
        "Table for {people} please, {day} at {time}, under {name}.",
        "Hello, this is {name}. Is there space for {people} of us at {time} on {day}?",
        "Booking for {name}: {people} guests, {day}, arriving around {time}.",
        "{name} here. {people} people, {day} at {time} if possible.",
        "We can't make {other_day} any more, so could we come on {day} instead? {people} people at {time}. Thanks, {name}",
        "Last time we were {other_people}, but this {day} it will be {people} of us at {time}. Name: {name}.",
        "Could you move our booking from {other_time} to {time} on {day}? Still {people} people, name of {name}.",
        "My colleague {other_name} has a table on {other_day}. I need my own for {people} on {day} at {time}, under {name}.",
        "Is {time} on {day} free? We would be {people}. It's {name}, by the way.",
        "We usually come at {other_time}, but on {day} we'd like {time} please, a table for {people}. {name}",
        "Please reserve {people} seats for {day} evening at {time}. Surname {name}.",
        "{other_day} won't work for us after all. {day} at {time} for {people}? {name}",
        "{other_name} from my office suggested you. Table for {people}, {day}, {time}, for {name} please.",
        "There will be {people} of us, not {other_people} as I said before. {day}, {time}, {name}.",
    ],
    "test": [
        "Good evening, I'd like to reserve for {people} people this {day} at {time}, surname {name}.",
        "Not {other_day} but {day}, please: {people} of us, {time}. {name}",
        "Any chance of a table at {time} on {day}? There are {people} of us. Many thanks, {name}",
        "Please change our {other_time} slot to {time} on {day}, party of {people}, booked as {name}.",
        "We were {other_people} at your place last month. This time: {people} people, {day}, {time}. Reservation name {name}.",
        "{name}, {people} adults, {day} around {time}.",
        "{other_name} gave me your number. I'm {name} and need a table for {people} on {day} at {time}.",
        "Would {day} at {time} work for {people}? Put it under {name}, thank you.",
        "{other_day} is fully booked, I know, so {day} then, {time}, for {people}. Name is {name}.",
        "Dinner for {people} on {day}. Not at {other_time}, we can only come at {time}. {name}",
    ],
}


def booking_requests(n: int = 64, split: str = "train", seed: int = 0):
    """`n` booking messages with their answers: a DataFrame with columns text, name, day, time, people.

    split: "train" or "test" (different templates and surnames; see the data card above).
    Used by tutorials/06_applications.ipynb (extraction framed as classification).
    """
    import pandas as pd

    if split not in BOOKING_TEMPLATES:
        raise DataError(f"split={split!r} is not known; choose 'train' or 'test'.")
    rng = random.Random(f"bookings-{split}-{seed}")
    templates, names = BOOKING_TEMPLATES[split], SURNAMES[split]
    rows = []
    for i in range(n):
        template = templates[i % len(templates)] if i < len(templates) else rng.choice(templates)
        day, other_day = rng.sample(WEEKDAYS, 2)
        time, other_time = rng.sample(TIMES, 2)
        people, other_people = (str(p) for p in rng.sample(range(2, 13), 2))
        name, other_name = rng.sample(names, 2)
        text = template.format(name=name, day=day, time=time, people=people, other_day=other_day,
                               other_time=other_time, other_people=other_people, other_name=other_name)
        rows.append({"text": text, "name": name, "day": day, "time": time, "people": people})
    return pd.DataFrame(rows)


# aspect -> polarity -> phrasings
ASPECTS = {
    "food": {
        1: ["The food was delicious.", "Every dish was cooked perfectly.", "The pasta was the best I've had in years.",
            "Each plate came out full of flavour."],
        0: ["The food was fine, nothing special.", "The dishes were decent enough.", "The menu was ordinary.",
            "My main course was alright."],
        -1: ["The food was cold and bland.", "My steak was badly overcooked.", "The soup tasted of nothing.",
             "The fish smelled off and we left it."],
    },
    "service": {
        1: ["The staff were warm and attentive.", "Our waiter was friendly and quick.", "Service was excellent from start to finish.",
            "The waitress remembered every detail of our order."],
        0: ["Service was okay.", "The staff did their job.", "The waiter was polite but distant.",
            "Nobody was rude, nobody went out of their way."],
        -1: ["The waiter was rude to us.", "Staff ignored us for most of the evening.", "Our order was wrong twice.",
             "The manager shrugged when we complained."],
    },
    "price": {
        1: ["Great value for the money.", "Prices were very fair.", "It was surprisingly cheap for the quality.",
            "The set menu is a bargain."],
        0: ["Prices were about average.", "It costs what you'd expect.", "Not cheap, not expensive.",
            "The bill was roughly what we had guessed."],
        -1: ["Far too expensive for what you get.", "The bill was a shock.", "They charge a fortune for tiny portions.",
             "We paid double what the place is worth."],
    },
    "atmosphere": {
        1: ["The room was cosy and calm.", "Lovely music and soft lighting.", "A beautiful, relaxed dining room.",
            "The terrace has a wonderful view."],
        0: ["The room was plain.", "The decor was unremarkable.", "It looks like any other restaurant.",
            "The dining room was neither pleasant nor unpleasant."],
        -1: ["It was so loud we could not talk.", "The tables were sticky and cramped.", "The place felt dirty and gloomy.",
             "A cold draught blew through the room all night."],
    },
    "waiting": {
        1: ["Our food arrived in minutes.", "We were seated straight away.", "No waiting at all, even on a Saturday.",
            "Dessert was on the table before we had finished talking."],
        0: ["We waited a normal amount of time.", "The wait was reasonable.", "Food took the usual twenty minutes.",
            "There was a short queue at the door."],
        -1: ["We waited an hour for our mains.", "The wait was endless.", "We were left standing at the door for ages.",
             "It took forty minutes just to get the bill."],
    },
}


def rated_reviews(n: int = 240, split: str = "train", seed: int = 0):
    """`n` restaurant reviews with a 1-5 `rating` made from their sentences (see the data card).

    Columns: text, rating (an int). A review belongs to the test split when the sha256 of its
    text, read as a number, is divisible by 4 (about a quarter of all possible reviews), so the two
    splits never share a review, whatever `n` and `seed` are. Used by
    tutorials/06_applications.ipynb (rating prediction with task="regression").
    """
    import hashlib

    import pandas as pd

    if split not in ("train", "test"):
        raise DataError(f"split={split!r} is not known; choose 'train' or 'test'.")
    rng = random.Random(f"ratings-{seed}")
    rows, seen = [], set()
    while len(rows) < n:
        aspects = rng.sample(sorted(ASPECTS), rng.randint(2, 4))
        polarities = [rng.choice((1, 0, -1)) for _ in aspects]
        text = " ".join(rng.choice(ASPECTS[a][p]) for a, p in zip(aspects, polarities))
        in_test = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 4 == 0
        if in_test == (split == "test") and text not in seen:
            seen.add(text)
            rows.append({"text": text, "rating": max(1, min(5, 3 + sum(polarities)))})
    return pd.DataFrame(rows)
