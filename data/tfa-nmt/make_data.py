"""Writes spa.txt: short English-Spanish sentence pairs for docs/examples/tfa_nmt.py.

The pairs come from templates and a small lexicon (subjects, adjectives,
places, nouns, verbs), so the data set is small, free to ship and the same on
every run. Each line is `English<TAB>Spanish`, the format of the
manythings.org/Tatoeba file that TensorFlow Addons' NMT tutorial downloads.
The lines are shuffled with a fixed seed, so the first N lines (the
tutorial's `num_examples`) mix every template.

    python data/tfa-nmt/make_data.py            # rewrites data/tfa-nmt/spa.txt
    python data/tfa-nmt/make_data.py --check    # exit 1 if spa.txt differs
"""

import argparse
import pathlib
import random
import sys

OUT = pathlib.Path(__file__).resolve().parent / "spa.txt"
SEED = 2020

# English subject, Spanish subject (None: the verb alone), person 0-4
# (I, you, he/she, we, they), genders of the Spanish adjective forms.
SUBJECTS = [
    ("I", None, 0, "mf"),
    ("You", None, 1, "mf"),
    ("He", "Él", 2, "m"),
    ("She", "Ella", 2, "f"),
    ("We", None, 3, "mf"),
    ("They", "Ellos", 4, "m"),
    ("They", "Ellas", 4, "f"),
    ("Tom", "Tom", 2, "m"),
    ("Mary", "Mary", 2, "f"),
    ("Luis", "Luis", 2, "m"),
    ("Ana", "Ana", 2, "f"),
]

BE = ["am", "are", "is", "are", "are"]
ESTAR = ["estoy", "estás", "está", "estamos", "están"]
TENER = ["tengo", "tienes", "tiene", "tenemos", "tienen"]
IR = ["voy", "vas", "va", "vamos", "van"]
MODALS = [  # English verb, its Spanish forms
    ("want", ["quiero", "quieres", "quiere", "queremos", "quieren"]),
    ("need", ["necesito", "necesitas", "necesita", "necesitamos", "necesitan"]),
    ("can", ["puedo", "puedes", "puede", "podemos", "pueden"]),
]
GUSTAR = ["me", "te", "le", "nos", "les"]

# English, Spanish masculine singular (the other forms are regular).
ADJECTIVES = [
    ("tired", "cansado"), ("sick", "enfermo"), ("ready", "listo"), ("busy", "ocupado"),
    ("bored", "aburrido"), ("angry", "enojado"), ("happy", "contento"),
    ("worried", "preocupado"), ("sad", "triste"), ("calm", "tranquilo"),
]
PLACES = [
    ("at home", "en casa"), ("here", "aquí"), ("there", "allí"),
    ("at school", "en la escuela"), ("at work", "en el trabajo"),
    ("in the park", "en el parque"), ("in the kitchen", "en la cocina"),
    ("in the car", "en el coche"),
]
# English, Spanish, gender.
NOUNS = [
    ("dog", "perro", "m"), ("cat", "gato", "m"), ("car", "coche", "m"), ("house", "casa", "f"),
    ("book", "libro", "m"), ("key", "llave", "f"), ("bicycle", "bicicleta", "f"),
    ("computer", "computadora", "f"), ("brother", "hermano", "m"),
    ("sister", "hermana", "f"), ("friend", "amigo", "m"), ("idea", "idea", "f"),
]
OWNED = NOUNS + [("life", "vida", "f"), ("family", "familia", "f"), ("city", "ciudad", "f"),
                 ("room", "cuarto", "m")]
VERBS = [
    ("eat", "comer"), ("sleep", "dormir"), ("swim", "nadar"), ("dance", "bailar"),
    ("work", "trabajar"), ("run", "correr"), ("rest", "descansar"), ("read", "leer"),
    ("sing", "cantar"), ("help", "ayudar"), ("study", "estudiar"), ("travel", "viajar"),
    ("win", "ganar"), ("cook", "cocinar"),
]
TRY_VERBS = VERBS + [("find out", "averiguarlo"), ("understand it", "entenderlo"),
                     ("remember it", "recordarlo"), ("do it", "hacerlo")]
LIKED = [
    ("coffee", "el café"), ("tea", "el té"), ("music", "la música"),
    ("chocolate", "el chocolate"), ("milk", "la leche"), ("soccer", "el fútbol"),
    ("rain", "la lluvia"), ("winter", "el invierno"), ("summer", "el verano"),
    ("this city", "esta ciudad"),
]
WEATHER = [("cold", "frío"), ("hot", "calor"), ("windy", "viento")]
WHEN = [
    ("", ""), ("here", "aquí"), ("today", "hoy"), ("outside", "afuera"),
    ("in winter", "en invierno"), ("in summer", "en verano"), ("at night", "de noche"),
]
DESTINATIONS = [
    ("to school", "a la escuela"), ("to the park", "al parque"), ("to work", "al trabajo"),
    ("to the beach", "a la playa"), ("to the market", "al mercado"),
    ("to the movies", "al cine"),
]


def _agree(adjective, gender, plural):
    if adjective.endswith("e"):
        return adjective + ("s" if plural else "")
    stem = adjective[:-1]
    return stem + ("a" if gender == "f" else "o") + ("s" if plural else "")


def _cap(text):
    return text[0].upper() + text[1:]


def _third(verb, person):
    """An English present-tense verb for the person (`he works`)."""
    if person != 2 or verb == "can":
        return verb
    return {"have": "has", "go": "goes"}.get(verb, verb + "s")


def _do(person):
    return "does" if person == 2 else "do"


def _state_pairs():
    """`I am tired.`, `Are you still at home?` and their negations and questions."""
    for en, es, person, genders in SUBJECTS:
        be, estar = BE[person], ESTAR[person]
        en_q = _question_subject(en)
        plural = person in (3, 4)
        es_q = _es_question_subject(es, person)
        for gender in genders:
            for adj_en, adj_es in ADJECTIVES:
                adj = _agree(adj_es, gender, plural)
                yield f"{en} {be} {adj_en}.", _sentence(es, f"{estar} {adj}")
                yield f"{en} {be} not {adj_en}.", _sentence(es, f"no {estar} {adj}")
                yield f"{_cap(be)} {en_q} {adj_en}?", f"¿{_cap(estar)}{es_q} {adj}?"
                yield (f"{_cap(be)} {en_q} still {adj_en}?",
                       f"¿Todavía {estar}{es_q} {adj}?")
        for place_en, place_es in PLACES:
            yield f"{en} {be} {place_en}.", _sentence(es, f"{estar} {place_es}")
            yield f"{en} {be} not {place_en}.", _sentence(es, f"no {estar} {place_es}")
            yield f"{_cap(be)} {en_q} {place_en}?", f"¿{_cap(estar)}{es_q} {place_es}?"
            yield (f"{_cap(be)} {en_q} still {place_en}?",
                   f"¿Todavía {estar}{es_q} {place_es}?")


def _sentence(subject, predicate):
    text = predicate if subject is None else f"{subject} {predicate}"
    return _cap(text) + "."


def _question_subject(en):
    return en if en in ("I", "Tom", "Mary", "Luis", "Ana") else en.lower()


def _es_question_subject(es, person):
    """The Spanish subject after the verb of a question, with its space (`¿Está él ...`).

    Questions drop the pronoun of `they`, as in `¿Todavía están en casa?`.
    """
    if es is None or person == 4:
        return ""
    return f" {es.lower()}" if es in ("Él", "Ella") else f" {es}"


def _verb_pairs():
    """`I have a dog.`, `She wants to swim.`, `We go to the park.` and their forms."""
    for en, es, person, _ in SUBJECTS:
        q = _question_subject(en)
        es_q = _es_question_subject(es, person)
        for noun_en, noun_es, gender in NOUNS:
            article = "una" if gender == "f" else "un"
            article_en = "an" if noun_en[0] in "aeiou" else "a"
            obj_en, obj_es = f"{article_en} {noun_en}", f"{article} {noun_es}"
            tener = TENER[person]
            yield f"{en} {_third('have', person)} {obj_en}.", \
                _sentence(es, f"{tener} {obj_es}")
            yield f"{en} {_do(person)} not have {obj_en}.", _sentence(es, f"no {tener} {obj_es}")
            yield f"{_cap(_do(person))} {q} have {obj_en}?", f"¿{_cap(tener)}{es_q} {obj_es}?"
        for modal, forms in MODALS:
            for verb_en, verb_es in VERBS:
                form = forms[person]
                if modal == "can":
                    yield f"{en} can {verb_en}.", _sentence(es, f"{form} {verb_es}")
                    yield f"{en} cannot {verb_en}.", _sentence(es, f"no {form} {verb_es}")
                    yield f"Can {q} {verb_en}?", f"¿{_cap(form)}{es_q} {verb_es}?"
                    continue
                yield f"{en} {_third(modal, person)} to {verb_en}.", \
                    _sentence(es, f"{form} {verb_es}")
                yield f"{en} {_do(person)} not {modal} to {verb_en}.", \
                    _sentence(es, f"no {form} {verb_es}")
                yield f"{_cap(_do(person))} {q} {modal} to {verb_en}?", \
                    f"¿{_cap(form)}{es_q} {verb_es}?"
        for where_en, where_es in DESTINATIONS:
            ir = IR[person]
            yield f"{en} {_third('go', person)} {where_en}.", _sentence(es, f"{ir} {where_es}")
            yield f"{en} {_do(person)} not go {where_en}.", _sentence(es, f"no {ir} {where_es}")
            yield f"{_cap(_do(person))} {q} go {where_en}?", f"¿{_cap(ir)}{es_q} {where_es}?"
        for thing_en, thing_es in LIKED:
            pronoun = GUSTAR[person]
            # `A él le gusta`: the third persons name who likes it.
            who = f"A {es.lower() if es in ('Él', 'Ella', 'Ellos', 'Ellas') else es} " \
                if es is not None else ""
            like = _third("like", person)
            yield f"{en} {like} {thing_en}.", _cap(f"{who}{pronoun} gusta {thing_es}.")
            yield (f"{en} {_do(person)} not like {thing_en}.",
                   _cap(f"{who}no {pronoun} gusta {thing_es}."))
            if es is None:
                yield (f"{_cap(_do(person))} {q} like {thing_en}?",
                       f"¿{_cap(pronoun)} gusta {thing_es}?")


def _other_pairs():
    """`This is my life.`, `It's very cold here.`, `Try to find out.`, `Let's swim.`"""
    for noun_en, noun_es, gender in OWNED:
        this, that = ("Esta", "Esa") if gender == "f" else ("Este", "Ese")
        ours = "nuestra" if gender == "f" else "nuestro"
        for owner_en, owner_es in (("my", "mi"), ("your", "tu"), ("our", ours)):
            yield f"This is {owner_en} {noun_en}.", f"{this} es {owner_es} {noun_es}."
            yield f"That is {owner_en} {noun_en}.", f"{that} es {owner_es} {noun_es}."
            yield f"Is this {owner_en} {noun_en}?", f"¿Es {this.lower()} {owner_es} {noun_es}?"
    for weather_en, weather_es in WEATHER:
        for when_en, when_es in WHEN:
            tail_en = f" {when_en}" if when_en else ""
            tail_es = f" {when_es}" if when_es else ""
            yield f"It's {weather_en}{tail_en}.", f"Hace {weather_es}{tail_es}."
            yield f"It's very {weather_en}{tail_en}.", f"Hace mucho {weather_es}{tail_es}."
            yield f"It's not {weather_en}{tail_en}.", f"No hace {weather_es}{tail_es}."
            yield f"Is it {weather_en}{tail_en}?", f"¿Hace {weather_es}{tail_es}?"
    for verb_en, verb_es in TRY_VERBS:
        yield f"Try to {verb_en}.", f"Trata de {verb_es}."
        yield f"Let's {verb_en}.", f"Vamos a {verb_es}."


def pairs():
    """Every `(English, Spanish)` pair once, in a fixed shuffled order."""
    seen, unique = set(), []
    for pair in (*_state_pairs(), *_verb_pairs(), *_other_pairs()):
        if pair not in seen:
            seen.add(pair)
            unique.append(pair)
    random.Random(SEED).shuffle(unique)
    return unique


def text():
    return "".join(f"{en}\t{es}\n" for en, es in pairs())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if spa.txt is not what this script writes")
    args = parser.parse_args(argv)
    wanted = text()
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == wanted
        print(f"{OUT.name}: {'up to date' if same else 'differs from the generator'}")
        return 0 if same else 1
    OUT.write_text(wanted, encoding="utf-8")
    print(f"wrote {OUT.name}: {len(wanted.splitlines())} pairs, {len(wanted.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
