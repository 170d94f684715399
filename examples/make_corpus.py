"""Generate the binary documents (PDF, DOCX) of the Tandem demo corpus and check the corpus.

The plain-text, Markdown, HTML and JSONL documents in ``examples/corpus/`` are committed as
they are. The PDF and DOCX documents are rendered by this script from the source text kept
below, so that their content is reviewable in a diff:

    .venv/bin/python examples/make_corpus.py          # (re)write the PDFs and DOCX files
    .venv/bin/python examples/make_corpus.py --check  # read every document back and verify
                                                      # examples/questions.jsonl

The source text uses a tiny Markdown subset: ``# title``, ``## heading``, ``- bullet``
(continuation lines indented) and paragraphs separated by blank lines; wrapped lines inside a
paragraph are joined with spaces. Output is deterministic (fixed PDF and DOCX timestamps), so
re-running the script on an unchanged source leaves ``git status`` clean.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
CORPUS = EXAMPLES / "corpus"
AUTHOR = "Tandem demo corpus"
FIXED_TIME = dt.datetime(2024, 1, 1, 12, 0, 0)
ZIP_TIME = (2024, 1, 1, 12, 0, 0)


@dataclass
class Block:
    """One block of a source document: a heading, a paragraph or a bullet item."""

    kind: str  # "heading", "para" or "bullet"
    text: str


@dataclass
class SourceDoc:
    """A parsed source document: its title and its body blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)


def parse(markup: str) -> SourceDoc:
    """Parse the Markdown subset used by the embedded sources into a :class:`SourceDoc`."""
    title = ""
    blocks: list[Block] = []
    current: Block | None = None
    for raw in markup.splitlines():
        line = raw.rstrip()
        if not line:
            current = None
        elif line.startswith("# "):
            title = line[2:].strip()
            current = None
        elif line.startswith("## "):
            blocks.append(Block("heading", line[3:].strip()))
            current = None
        elif line.startswith("- "):
            current = Block("bullet", line[2:].strip())
            blocks.append(current)
        elif current is not None:
            current.text += " " + line.strip()
        else:
            current = Block("para", line.strip())
            blocks.append(current)
    if not title:
        raise ValueError("source document has no '# title' line")
    return SourceDoc(title, blocks)


def write_pdf(doc: SourceDoc, path: Path) -> None:
    """Render ``doc`` as a small A4 PDF with extractable text (reportlab, Helvetica)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer
    from reportlab.platypus.flowables import Flowable

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    styles = getSampleStyleSheet()
    story: list[Flowable] = [Paragraph(esc(doc.title), styles["Title"]), Spacer(1, 0.3 * cm)]
    bullets: list[ListItem] = []

    def flush_bullets() -> None:
        if bullets:
            story.append(ListFlowable(list(bullets), bulletType="bullet", leftIndent=14))
            bullets.clear()

    for block in doc.blocks:
        if block.kind == "bullet":
            bullets.append(ListItem(Paragraph(esc(block.text), styles["BodyText"])))
            continue
        flush_bullets()
        style = styles["Heading2"] if block.kind == "heading" else styles["BodyText"]
        story.append(Paragraph(esc(block.text), style))
    flush_bullets()
    template = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=doc.title,
        author=AUTHOR,
        leftMargin=2.2 * cm,
        rightMargin=2.2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
        invariant=1,
    )
    template.build(story)


def write_docx(doc: SourceDoc, path: Path) -> None:
    """Render ``doc`` as a DOCX file (python-docx) with stable zip timestamps."""
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = doc.title
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.revision = 1
    document.add_heading(doc.title, level=0)
    for block in doc.blocks:
        if block.kind == "heading":
            document.add_heading(block.text, level=1)
        elif block.kind == "bullet":
            document.add_paragraph(block.text, style="List Bullet")
        else:
            document.add_paragraph(block.text)
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_normalise_zip(buffer.getvalue()))


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip archive with sorted-stable entries and a fixed timestamp."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def generate() -> list[Path]:
    """Write every embedded PDF and DOCX document under ``CORPUS``; return their paths."""
    written: list[Path] = []
    for rel, markup in PDF_DOCUMENTS.items():
        path = CORPUS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pdf(parse(markup), path)
        written.append(path)
    for rel, markup in DOCX_DOCUMENTS.items():
        path = CORPUS / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_docx(parse(markup), path)
        written.append(path)
    return written


def read_back(path: Path) -> list[str]:
    """Extract the text of one corpus file (one string per document; JSONL gives several)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        return ["\n".join(page.extract_text() or "" for page in PdfReader(path).pages)]
    if suffix == ".docx":
        import docx2txt

        return [docx2txt.process(str(path))]
    if suffix in {".html", ".htm"}:
        from bs4 import BeautifulSoup

        return [BeautifulSoup(path.read_text("utf-8"), "html.parser").get_text(" ")]
    if suffix == ".jsonl":
        lines = path.read_text("utf-8").splitlines()
        return [json.loads(line)["text"] for line in lines if line.strip()]
    return [path.read_text("utf-8")]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def check() -> int:
    """Read every document back and verify that each question's answer is in exactly one.

    Returns a process exit status: 0 when everything checks out.
    """
    problems: list[str] = []
    docs: list[tuple[str, str]] = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        texts = read_back(path)
        rel = str(path.relative_to(CORPUS))
        for i, text in enumerate(texts):
            name = f"{rel}#{i + 1}" if len(texts) > 1 else rel
            words = len(text.split())
            print(f"{name:45s} {path.stat().st_size:7d} B {words:5d} words")
            docs.append((name, _squash(text)))
    for rel, markup in {**PDF_DOCUMENTS, **DOCX_DOCUMENTS}.items():
        source = parse(markup)
        extracted = dict(docs)[rel]
        for block in [Block("para", source.title), *source.blocks]:
            if _squash(block.text) not in extracted:
                problems.append(f"{rel}: text not read back: {block.text[:60]!r}")
    for line in (EXAMPLES / "questions.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        hits = [name for name, text in docs if _squash(row["answer"]) in text]
        if len(hits) != 1:
            problems.append(f"{row['id']}: answer {row['answer']!r} found in {hits}")
        else:
            print(f"{row['id']}: {row['answer']!r} -> {hits[0]}")
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    total = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    print(f"{len(docs)} documents, examples/ is {total / 1024:.0f} KiB")
    return 1 if problems else 0


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of generating")
    args = parser.parse_args()
    if args.check:
        return check()
    for path in generate():
        print(f"wrote {path.relative_to(EXAMPLES)} ({path.stat().st_size} bytes)")
    return 0


# --- Source text of the PDF and DOCX documents -------------------------------------------

PDF_DOCUMENTS: dict[str, str] = {
    "science/photosynthesis.pdf": """\
# Photosynthesis: How Plants Capture Sunlight

Photosynthesis is the process by which green plants, algae and some bacteria use the energy
of light to turn carbon dioxide and water into sugar, releasing oxygen as a by-product.
Almost all life on Earth depends on it, directly or indirectly, for food, and it supplies
the oxygen in the air we breathe. Roughly half of the world's photosynthesis is carried out
not by land plants but by microscopic phytoplankton in the oceans.

## The overall equation

The overall reaction is usually summarised as: 6CO2 + 6H2O + light energy -> C6H12O6 + 6O2.
In words, six molecules of carbon dioxide and six molecules of water, powered by light,
produce one molecule of glucose and six molecules of oxygen. In 1941 Samuel Ruben and Martin
Kamen used isotope labelling to show that the oxygen released comes from the water, not from
the carbon dioxide.

## Chloroplasts and chlorophyll

In plants, photosynthesis takes place in chloroplasts, small green structures found mainly
in the cells of leaves. Chloroplasts contain the pigment chlorophyll, which absorbs red and
blue light strongly but reflects green light, which is why leaves look green. Chloroplasts
are thought to descend from free-living cyanobacteria that were engulfed by an ancestral
cell more than a billion years ago.

## Two stages

The light-dependent reactions take place in the thylakoid membranes inside the chloroplast.
Light energy splits water molecules, releasing oxygen, and the energy is stored in two
carrier molecules, ATP and NADPH.

The light-independent reactions, known as the Calvin cycle, take place in the fluid around
the thylakoids, called the stroma. Here the enzyme RuBisCO fixes carbon dioxide from the air
into organic molecules, using the ATP and NADPH to build sugars. RuBisCO is often described
as the most abundant protein on Earth. The American chemist Melvin Calvin, who worked out
the cycle using radioactive carbon-14, received the Nobel Prize in Chemistry in 1961.

## Discovering photosynthesis

In an experiment published in 1648, the Flemish scientist Jan van Helmont described how he
grew a willow tree in a pot for five years and found that the tree had gained about 74
kilograms while the soil lost almost nothing, concluding wrongly that the plant was made
from water alone. In 1771 Joseph Priestley found that a sprig of mint could restore air in
which a candle had burned out, so that a mouse could live in it. In 1779 the Dutch physician
Jan Ingenhousz showed that plants only "restore" the air in the presence of light, and only
through their green parts.

## Variations

Most plants, including wheat and rice, are C3 plants. C4 plants such as maize and sugarcane
concentrate carbon dioxide around RuBisCO, which makes them more efficient in hot, bright
conditions. CAM plants, such as cacti and pineapples, open their pores only at night to save
water, storing carbon dioxide until daylight returns.
""",
    "science/vaccines.pdf": """\
# Vaccines: A Short History of Immunisation

A vaccine trains the immune system to recognise a germ without causing the disease itself.
When the real germ arrives later, the body's memory B cells and T cells recognise it and
mount a fast, strong response.

## Jenner and smallpox

Smallpox killed hundreds of millions of people over the centuries. Country people had long
noticed that milkmaids who caught cowpox, a mild disease, seemed protected from smallpox. On
14 May 1796 the English doctor Edward Jenner took material from a cowpox sore on the hand of
a milkmaid, Sarah Nelmes, and inoculated James Phipps, the eight-year-old son of his
gardener. When Jenner later exposed the boy to smallpox, he did not fall ill. The word
vaccine comes from the Latin vacca, meaning cow.

Vaccination eventually made it possible to eliminate smallpox entirely. After a worldwide
campaign led by the World Health Organization, the last natural case occurred in Somalia in
1977, and in 1980 the World Health Assembly declared smallpox eradicated. It remains the
only human disease to have been eradicated.

## Pasteur and the laboratory vaccine

The French chemist Louis Pasteur showed in the 1870s and 1880s that germs could be weakened
in the laboratory to make vaccines, first for chicken cholera and anthrax. In July 1885 he
used a rabies vaccine to treat nine-year-old Joseph Meister, who had been bitten by a rabid
dog. The boy survived, and Pasteur became world famous.

## Polio

Polio paralysed tens of thousands of children a year in the mid-twentieth century. Jonas
Salk developed an injected vaccine made from inactivated (killed) virus, and its success in
a huge field trial was announced on 12 April 1955. Albert Sabin then developed an oral
vaccine using weakened live virus, which was licensed in the United States in the early
1960s and was easy to give on a sugar cube.

## Kinds of vaccine

- Live attenuated vaccines use a weakened form of the germ, for example the measles, mumps
  and rubella (MMR) vaccine.
- Inactivated vaccines use a killed germ, such as the Salk polio vaccine.
- Subunit vaccines use only a piece of the germ, such as a protein; the hepatitis B vaccine
  is an example.
- Toxoid vaccines use an inactivated toxin, as in the tetanus and diphtheria vaccines.
- mRNA vaccines deliver instructions that let the body's own cells make a harmless piece of
  the germ. The first mRNA vaccines, against COVID-19, were authorised in December 2020, and
  Katalin Karikó and Drew Weissman received the 2023 Nobel Prize in Physiology or Medicine
  for the research that made them possible.

Many vaccines also contain an adjuvant, such as aluminium salts, which strengthens the
immune response.

## Herd immunity

When enough people in a community are immune, a disease cannot spread easily, which protects
those who cannot be vaccinated. The threshold depends on how contagious a disease is: for
measles, one of the most contagious diseases known, about 95 percent of people need to be
immune.
""",
    "history/silk_road.pdf": """\
# The Silk Road

The Silk Road was not a single road but a network of overland and sea trade routes that
linked China with Central Asia, India, Persia, Arabia and the Mediterranean world for more
than 1,500 years. The main overland routes ran for more than 6,000 kilometres from the
Chinese capital Chang'an, present-day Xi'an, to the eastern shores of the Mediterranean.

## The name

The term is surprisingly modern. It was coined in 1877 by the German geographer Ferdinand
von Richthofen, who called the routes the Seidenstrasse, meaning "silk road". The people who
travelled the routes never used the name.

## Opening the routes

The routes are usually said to have opened during the Han dynasty. In 138 BC the emperor Wu
sent the envoy Zhang Qian west to seek allies against the nomadic Xiongnu. Zhang Qian was
captured and held for about ten years before completing his journey, but his reports about
the kingdoms of Central Asia, including the famous "heavenly horses" of the Ferghana Valley,
encouraged the Han court to open trade with the west.

## What was traded

Chinese silk was the most famous export; in Rome it was so prized that moralists complained
about the gold flowing east to pay for it. Other goods moving west included paper, porcelain
and tea, while horses, glassware, gold, silver, wool and grapes travelled east. Spices, gems
and cotton came from India. Few traders travelled the whole route; instead, goods passed
from merchant to merchant through oasis cities such as Dunhuang, Kashgar, Samarkand and
Bukhara. Sogdian merchants from the region around Samarkand were among the most important
middlemen.

## Ideas and disease

Ideas travelled as well as goods. Buddhism spread from India into Central Asia and China
along the Silk Road, and the caves of Mogao near Dunhuang contain thousands of Buddhist
paintings and manuscripts. Islam, Christianity and Manichaeism also spread along the routes,
as did technologies such as papermaking. Disease travelled too: the Black Death, which
reached Europe in 1347, is thought to have spread westward along these trade networks.

## The secret of silk

For centuries China guarded the secret of silk production. According to the Byzantine
historian Procopius, around AD 552 two monks smuggled silkworm eggs hidden in hollow canes
to Constantinople for the emperor Justinian I, allowing a silk industry to begin in the
Byzantine Empire.

## Travellers

The Venetian merchant Marco Polo travelled to China with his father and uncle, leaving in
1271 and returning in 1295. His account of the court of Kublai Khan introduced Europeans to
the wealth of the East. In 2014 a 5,000-kilometre section of the network, the Routes Network
of the Chang'an-Tianshan Corridor, was inscribed as a UNESCO World Heritage Site.
""",
    "food/chocolate.pdf": """\
# Chocolate: From Cacao Bean to Chocolate Bar

Chocolate is made from the seeds of the cacao tree, Theobroma cacao, a small tree native to
the tropical forests of Central and South America. The Swedish botanist Carl Linnaeus gave
the tree its scientific name in 1753; Theobroma means "food of the gods" in Greek.

## Ancient origins

Traces of theobromine, a chemical found in cacao, on pottery show that people in the upper
Amazon region of present-day Ecuador were using cacao about 5,300 years ago. Cacao later
became central to the cultures of Mesoamerica. The Maya and the Aztecs drank cacao as a
bitter, frothy drink, often flavoured with chilli and vanilla, and the Aztecs used cacao
beans as a form of currency. The Spanish encountered the drink in the early sixteenth
century and brought it to Spain, where it was sweetened with sugar and spread to the royal
courts of Europe.

## From bean to chocolate

After harvesting, cacao beans are scooped out of their pods with the surrounding pulp and
fermented for several days, which develops the chocolate flavour. They are then dried,
roasted and cracked to remove the shells. The broken pieces, called nibs, are ground into a
paste known as cocoa liquor, which contains roughly equal parts of cocoa solids and cocoa
butter.

## Inventions that made modern chocolate

- In 1828 the Dutch chemist Coenraad van Houten patented a press that squeezed most of the
  cocoa butter out of cocoa liquor, leaving cocoa powder. Treating cocoa with alkaline salts
  to make it milder and darker is still called "Dutching".
- In 1847 the firm J. S. Fry & Sons of Bristol, England, made the first solid chocolate bar
  by mixing cocoa powder, sugar and melted cocoa butter into a paste that could be moulded.
- In 1875 the Swiss chocolatier Daniel Peter created milk chocolate, working with milk
  products made by his neighbour in Vevey, Henri Nestlé.
- In 1879 Rodolphe Lindt of Bern invented the conche, a machine that stirs and grinds liquid
  chocolate for hours or days, giving it a smooth texture.

## Tempering

Cocoa butter can crystallise in six different forms. Only one of them, known as form V,
gives chocolate a glossy surface, a clean snap and a melting point of about 34 degrees
Celsius, just below body temperature, so that it melts in the mouth. Tempering is the
careful heating and cooling of melted chocolate to produce this crystal form. Badly tempered
chocolate develops a dull, grey surface called bloom.

## Chocolate today

Côte d'Ivoire is the world's largest producer of cocoa, growing about 40 percent of the
world's supply, followed by Ghana. Chocolate contains theobromine, which humans process
easily but dogs do not, so chocolate can be poisonous to dogs.
""",
    "tech/transistor.pdf": """\
# The Transistor: The Switch That Built the Digital Age

A transistor is a tiny semiconductor device that can amplify an electrical signal or switch
it on and off. Because a transistor can act as a switch controlled by electricity, billions
of them together can store data and perform logic, which makes them the basic building block
of every computer chip.

## Invention at Bell Labs

Before transistors, electronics relied on vacuum tubes, which were bulky, fragile,
power-hungry and short-lived. In December 1947, at Bell Telephone Laboratories in New
Jersey, the physicists John Bardeen and Walter Brattain built the first working transistor,
a point-contact device made from a slab of germanium and gold foil contacts. Their group
leader, William Shockley, soon designed the more practical junction transistor in 1948.
Bardeen, Brattain and Shockley shared the Nobel Prize in Physics in 1956 for the invention.

## The integrated circuit

Early transistors were separate components wired together by hand. In September 1958 Jack
Kilby of Texas Instruments demonstrated the first integrated circuit, putting several
components on one piece of germanium. A few months later, in 1959, Robert Noyce of Fairchild
Semiconductor developed a silicon integrated circuit using the planar process, which allowed
chips to be manufactured in large numbers. Kilby received the Nobel Prize in Physics in
2000.

## The MOSFET

In 1959 Mohamed Atalla and Dawon Kahng at Bell Labs invented the metal-oxide-semiconductor
field-effect transistor, or MOSFET. It could be made very small and used very little power,
and it became the most manufactured device in history: modern chips are built almost
entirely from MOSFETs.

## Moore's law

In 1965 Gordon Moore, later a co-founder of Intel, observed that the number of components on
an integrated circuit was doubling every year. In 1975 he revised the prediction to a
doubling about every two years, and this trend became known as Moore's law. The first
commercial microprocessor, the Intel 4004 released in 1971, contained about 2,300
transistors. Fifty years later, high-end processors contain tens of billions of transistors,
each with features only a few nanometres across.

## Why it matters

Transistors made possible the pocket transistor radio of the 1950s, the personal computer,
the mobile phone and the internet. Because switching a transistor uses very little energy
and can happen billions of times per second, digital electronics became cheap, fast and
portable.
""",
}

DOCX_DOCUMENTS: dict[str, str] = {
    "science/penguins.docx": """\
# Penguins of the Southern Seas

Penguins are flightless seabirds superbly adapted to life in the water. There are about 18
species, and almost all of them live in the Southern Hemisphere, from the ice of Antarctica
to the coasts of South America, southern Africa, Australia and New Zealand. The Galápagos
penguin lives near the equator, and a few of its colonies lie just north of it.

## Built for swimming

A penguin's wings have evolved into stiff, narrow flippers that propel it through the water
as if it were flying. Its bones are dense rather than hollow, which helps it dive, and its
body is streamlined like a torpedo. The gentoo penguin is the fastest swimmer, reaching
speeds of about 36 kilometres per hour. Penguins are countershaded: their black backs blend
with the dark sea when seen from above, and their white bellies blend with the bright
surface when seen from below, hiding them from predators such as leopard seals and orcas.

Penguins eat krill, fish and squid. They can drink seawater because a salt gland above each
eye removes excess salt from their blood, which then drips out through the bill.

## The largest and the smallest

The emperor penguin is the largest species, standing up to about 1.2 metres tall and
weighing between 22 and 45 kilograms. Emperors are also the deepest-diving birds: they have
been recorded diving to more than 500 metres and staying underwater for over 20 minutes.

The smallest species is the little penguin, also called the fairy penguin or blue penguin,
which stands only about 33 centimetres tall and weighs around one kilogram. It lives on the
coasts of southern Australia and New Zealand, and the nightly "penguin parade" of little
penguins returning to shore on Phillip Island near Melbourne is a famous tourist attraction.

## Breeding in the Antarctic winter

Emperor penguins are the only penguins that breed during the Antarctic winter. After the
female lays a single egg, she passes it to the male and returns to the sea to feed. The male
balances the egg on his feet under a fold of skin called the brood pouch and incubates it
for about two months through temperatures that can fall below minus 40 degrees Celsius.
Thousands of males huddle together for warmth, taking turns on the cold outer edge of the
group. Because he eats nothing during this time, a male can lose up to 40 percent of his
body weight before the female returns.

## Names

The Adélie penguin was named by the French explorer Jules Dumont d'Urville after his wife,
Adèle. The king penguin, the second largest species, lives on sub-Antarctic islands such as
South Georgia.
""",
    "history/metric_system.docx": """\
# The Metric System

The metric system is a decimal system of measurement in which units are related by powers of
ten. Its modern form, the International System of Units (SI), is used by almost every
country in the world for science, trade and everyday life.

## Born in revolutionary France

Before the French Revolution, France had hundreds of different local units of length and
weight, which made trade confusing and open to fraud. In 1791 the French Academy of Sciences
proposed a new unit of length, the metre, defined as one ten-millionth of the distance from
the North Pole to the equator, measured along the meridian passing through Paris. To find
that length, the astronomers Jean-Baptiste Delambre and Pierre Méchain spent the years from
1792 to 1798 surveying the meridian between Dunkirk and Barcelona. The gram was defined as
the mass of one cubic centimetre of water. France officially adopted the metric system in
1795.

## An international standard

On 20 May 1875, representatives of 17 nations signed the Metre Convention, or Treaty of the
Metre, in Paris. It created the International Bureau of Weights and Measures (BIPM), based
at Sèvres near Paris, to look after the standards. In 1889 a new international prototype
metre bar and a platinum-iridium cylinder, the International Prototype of the Kilogram,
became the official standards. The date of the treaty, 20 May, is now celebrated as World
Metrology Day.

In 1960 the General Conference on Weights and Measures gave the modern system its name, the
International System of Units, abbreviated SI from the French Système international
d'unités.

## The seven base units

- the metre (length)
- the kilogram (mass)
- the second (time)
- the ampere (electric current)
- the kelvin (temperature)
- the mole (amount of substance)
- the candela (luminous intensity)

All other units, such as the newton, the joule and the watt, are derived from these.

## Definitions based on nature

Physical objects can change, be damaged or be lost, so scientists gradually replaced them
with definitions based on constants of nature. Since 1983 the metre has been defined as the
distance light travels in a vacuum in 1/299,792,458 of a second. The kilogram was the last
unit defined by a physical object: since 20 May 2019 it has been defined by fixing the value
of the Planck constant, and the platinum-iridium cylinder kept in a vault at Sèvres since
1889 was retired as the standard.

## Holdouts

Today only a handful of countries, most notably the United States, have not made the metric
system their main system of measurement, although even there science, medicine and the
military use metric units.
""",
    "food/cheese_making.docx": """\
# How Cheese Is Made

Cheese is one of the oldest ways of preserving milk. Archaeologists have found pieces of
pottery with tiny holes, used as cheese strainers, in Poland that are about 7,000 years old,
and traces of milk fat on them show that they were used to separate curds from whey.

## Curds and whey

Most cheese making follows the same basic steps. First, milk is usually pasteurised and then
cooled. Starter cultures of lactic acid bacteria are added; they turn the milk sugar,
lactose, into lactic acid, which sours the milk and begins to develop flavour. Next, the
cheesemaker adds rennet, which contains the enzyme chymosin. Rennet makes the milk protein
casein clump together into a soft gel. Traditionally rennet came from the stomach lining of
young calves, but since the 1990s much of the world's cheese has been made with chymosin
produced by fermentation using genetically modified microorganisms.

The gel is cut into small pieces called curds, which release a watery liquid called whey.
The curds are stirred and often heated: the smaller the curds and the higher the
temperature, the more whey is expelled and the harder the final cheese. It takes about 10
litres of milk to make 1 kilogram of hard cheese.

## Shaping, salting and ripening

The curds are then salted and pressed into moulds. Cheddar gets its firm texture from
cheddaring, a step in which slabs of curd are stacked and turned repeatedly to squeeze out
whey; it is named after the village of Cheddar in Somerset, England. For mozzarella, the
curds are stretched and kneaded in hot water, a method called pasta filata.

Most cheeses are then ripened, or aged, for weeks, months or years. During ripening, enzymes
and microbes break down proteins and fats, creating the flavour and texture of each variety.

## Moulds and holes

Roquefort, a blue cheese made from sheep's milk, is ripened in the natural caves of Mont
Combalou at Roquefort-sur-Soulzon in southern France. Its blue veins come from the mould
Penicillium roqueforti. In 1925 Roquefort became the first cheese in France to receive a
protected designation of origin.

The holes, or eyes, in Swiss Emmental are made by the bacterium Propionibacterium
freudenreichii, which produces bubbles of carbon dioxide gas inside the ripening cheese. In
2015 Swiss researchers reported that tiny particles of hay in the milk give the gas bubbles
places to form, which explained why cheeses made with very clean modern milk had fewer
holes.

## A king of cheeses

Parmigiano-Reggiano, from northern Italy, must be aged for at least 12 months, and each
wheel weighs about 40 kilograms. Only cheese from a defined area around Parma, Reggio
Emilia, Modena and parts of Bologna and Mantua may carry the name.
""",
    "tech/gps.docx": """\
# How GPS Works

The Global Positioning System (GPS) is a satellite navigation system owned by the United
States government and operated by the United States Space Force. A GPS receiver, such as the
one in a mobile phone, can work out its position anywhere on Earth, in any weather, by
listening to signals from satellites.

## The satellites

The first GPS satellite, Navstar 1, was launched on 22 February 1978. The system was
declared fully operational in 1995. The constellation is designed around at least 24
satellites, arranged in six orbital planes at an altitude of about 20,200 kilometres. Each
satellite circles the Earth twice a day, and from almost anywhere on the surface several
satellites are always above the horizon.

## Measuring distance with time

Each satellite carries extremely precise atomic clocks and continuously broadcasts its
position and the exact time. Radio signals travel at the speed of light, so by measuring how
long a signal took to arrive, the receiver can calculate its distance from that satellite.
Knowing the distance to several satellites lets the receiver fix its position, a method
called trilateration.

A receiver needs signals from at least four satellites. Three would be enough to fix a
position if the receiver had a perfect clock, but the cheap clock in a phone is not accurate
enough, so the fourth satellite is used to solve for the error in the receiver's own clock.
Timing must be extremely precise: an error of one microsecond corresponds to a position
error of about 300 metres.

## Einstein in your pocket

GPS has to allow for Einstein's theories of relativity. Because the satellites move fast,
special relativity makes their clocks run slow by about 7 microseconds per day; because they
are farther from Earth's gravity, general relativity makes them run fast by about 45
microseconds per day. The net effect is that the satellite clocks gain about 38 microseconds
per day, which would cause errors of kilometres each day if it were not corrected.

## From military to civilian

GPS was designed for the military. After Korean Air Lines Flight 007 was shot down in 1983
after straying into Soviet airspace, President Ronald Reagan announced that GPS would be
made available for civilian use. Until 2000, however, civilian signals were deliberately
degraded by a feature called Selective Availability. It was switched off on 1 May 2000,
immediately improving civilian accuracy from about 100 metres to about 10 metres, and
leading to the boom in car navigation and, later, smartphone maps.

## Other systems

GPS is one of several global navigation satellite systems (GNSS). Russia operates GLONASS,
the European Union operates Galileo, and China operates BeiDou. Most modern receivers use
several systems at once for better accuracy.
""",
    "leisure/olympic_games.docx": """\
# The Olympic Games: Ancient and Modern

The Olympic Games are the world's largest international sporting event. They began in
ancient Greece more than 2,700 years ago and were revived at the end of the nineteenth
century.

## The ancient Games

The ancient Olympic Games were held every four years at Olympia, a sanctuary of Zeus in the
western Peloponnese. By tradition the first Games took place in 776 BC, when the only event
was the stadion, a sprint of about 190 metres, won by a cook named Koroibos of Elis. The
four-year period between Games was called an Olympiad, and the Greeks used it to count
years. Over time the programme grew to include wrestling, boxing, chariot racing, the
pentathlon and the pankration, a brutal combination of boxing and wrestling. Winners
received a crown of olive leaves. The Games continued for more than a thousand years until
they ended in the late fourth century AD under the Christian Roman emperor Theodosius I.

## The revival

The French educator Pierre de Coubertin campaigned to revive the Games as a way to promote
international friendship and physical education. At a congress in Paris on 23 June 1894 the
International Olympic Committee (IOC) was founded, and 23 June is now celebrated as Olympic
Day. The first modern Olympic Games were held in Athens in April 1896, with about 241
athletes from 14 nations taking part. The marathon, a new race inspired by the legend of a
messenger running from Marathon to Athens, was won by the Greek water carrier Spyridon
Louis, to the delight of the home crowd.

Women first competed at the 1900 Games in Paris. The British tennis player Charlotte Cooper
became the first female Olympic champion.

## Symbols and traditions

The Olympic rings were designed by Coubertin in 1913. The five interlocking rings, coloured
blue, yellow, black, green and red on a white background, represent the union of the five
inhabited continents. The Olympic flame is lit at Olympia using the rays of the Sun focused
by a curved mirror, and the torch relay that carries it to the host city was first held for
the 1936 Games in Berlin.

## The Winter Games

The first Winter Olympic Games were held in Chamonix, France, in 1924. Until 1992 the Summer
and Winter Games were held in the same year; since 1994 they have alternated, so that there
are Olympic Games every two years.
""",
}

if __name__ == "__main__":
    sys.exit(main())
