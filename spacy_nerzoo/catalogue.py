"""The zoo: one entry per named model, and the single home of each model's defaults.

Factories, the CLI and the docs all read from here, so a model's label set, window size or public
checkpoint is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Architecture = Literal["token_classifier", "nerdl"]
TagScheme = Literal["IOB2", "IO", "BIOES"]

CONLL_LABELS = ("LOC", "MISC", "ORG", "PER")

# Few-NERD's 66 fine types, written coarse-fine as in the corpus (8 coarse families).
FEWNERD_LABELS = (
    "art-broadcastprogram", "art-film", "art-music", "art-other", "art-painting", "art-writtenart",
    "building-airport", "building-hospital", "building-hotel", "building-library",
    "building-other", "building-restaurant", "building-sportsfacility", "building-theater",
    "event-attack/battle/war/militaryconflict", "event-disaster", "event-election", "event-other",
    "event-protest", "event-sportsevent",
    "location-GPE", "location-bodiesofwater", "location-island", "location-mountain",
    "location-other", "location-park", "location-road/railway/highway/transit",
    "organization-company", "organization-education", "organization-government/governmentagency",
    "organization-media/newspaper", "organization-other", "organization-politicalparty",
    "organization-religion", "organization-showorganization", "organization-sportsleague",
    "organization-sportsteam",
    "other-astronomything", "other-award", "other-biologything", "other-chemicalthing",
    "other-currency", "other-disease", "other-educationaldegree", "other-god", "other-language",
    "other-law", "other-livingthing", "other-medical",
    "person-actor", "person-artist/author", "person-athlete", "person-director", "person-other",
    "person-politician", "person-scholar", "person-soldier",
    "product-airplane", "product-car", "product-food", "product-game", "product-other",
    "product-ship", "product-software", "product-train", "product-weapon",
)  # fmt: skip


@dataclass(frozen=True)
class ReferenceScores:
    """Scores published for the Spark NLP model this entry mirrors (not measured by us)."""

    source: str  # URL of the model card
    split: str  # which split the figures are on
    micro_f1: float | None = None
    per_type_f1: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class ZooEntry:
    """Everything the package knows about one zoo model."""

    name: str
    architecture: Architecture
    base_encoder: str
    labels: tuple[str, ...]
    tag_scheme: TagScheme
    spark_nlp_model: str | None
    max_length: int = 512
    stride: int | None = None  # window overlap in wordpieces; None: a quarter of the window
    case_sensitive: bool = True
    checkpoint: str | None = None  # public Hugging Face id a user with internet can load
    checkpoint_note: str = ""
    reference: ReferenceScores | None = None
    bundled: str | None = None  # path inside the installed package, for models we ship
    licence: str = ""
    description: str = ""
    # The Spark NLP model's download (file name as on its card, under SPARK_NLP_MODELS_URL):
    # `nerzoo import-sparknlp` converts it (spacy_nerzoo.sparknlp).
    spark_nlp_download: str | None = None
    # NerDL seeds: the embeddings annotator's download (the tagger zip holds no embeddings),
    # converted first and passed to the tagger's import with --embeddings.
    spark_nlp_embeddings_download: str | None = None

    @property
    def spark_nlp_url(self) -> str | None:
        """Where the Spark NLP model's zip is published (its card's Download link)."""
        return SPARK_NLP_MODELS_URL + self.spark_nlp_download if self.spark_nlp_download else None

    @property
    def spark_nlp_embeddings_url(self) -> str | None:
        """Where the embeddings annotator's zip of a NerDL seed is published."""
        name = self.spark_nlp_embeddings_download
        return SPARK_NLP_MODELS_URL + name if name else None


# John Snow Labs' public bucket, the target of every model card's Download button.
SPARK_NLP_MODELS_URL = "https://s3.amazonaws.com/auxdata.johnsnowlabs.com/public/models/"

ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    ZOO[entry.name] = entry
    return entry


def get_entry(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(
            f"No zoo model named {name!r}; known models: {', '.join(sorted(ZOO))}"
        ) from None


register(
    ZooEntry(
        name="albert_conll03",
        architecture="token_classifier",
        base_encoder="albert-base-v2",
        labels=CONLL_LABELS,
        tag_scheme="IOB2",
        spark_nlp_model="albert_base_token_classifier_conll03",
        spark_nlp_download="albert_base_token_classifier_conll03_en_3.3.0_3.0_1632660795297.zip",
        max_length=512,
        case_sensitive=False,
        checkpoint="ArBert/albert-base-v2-finetuned-ner",
        checkpoint_note=(
            "Stand-in, not the Spark NLP weights: John Snow Labs trained their model themselves "
            "(TFAlbertForTokenClassification) and published no Hugging Face copy. This is a "
            "public albert-base-v2 model fine-tuned on CoNLL-2003 (HF Trainer, 3 epochs). Its card "
            "reports P 0.9301 / R 0.9376 / F1 0.9338 / acc 0.9852 on the Trainer's evaluation set, "
            "presumably CoNLL-2003 validation. We could not read its config.json; the id2label "
            "names are unverified and may be generic LABEL_0..LABEL_8 in the HF conll2003 order "
            "(O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC)."
        ),
        reference=ReferenceScores(
            source="https://sparknlp.org/2021/09/26/albert_base_token_classifier_conll03_en.html",
            split="validation",
            micro_f1=0.8878,
            per_type_f1={"LOC": 0.9472, "MISC": 0.8179, "ORG": 0.8569, "PER": 0.8865},
            note=(
                "conlleval entity-level FB1 from the card's Benchmarking block, given here as "
                "fractions. The card does not name the split, but the block counts 51362 tokens "
                "and 5942 phrases. Those are the CoNLL-2003 dev (testa) counts; the ner_conll_elmo "
                "card labels the same counts 'Dev'. Test-split scores are not published. "
                "Card: 'Case sensitive: false', 'Max sentense length: 512'."
            ),
        ),
        licence=(
            "Spark NLP card: 'Open Source'. Stand-in checkpoint: apache-2.0 (its HF card). "
            "CoNLL-2003 text is Reuters RCV1 and comes under its own terms."
        ),
        description=(
            "ALBERT-base-v2 with a token-classification head, fine-tuned on CoNLL-2003 "
            "(LOC, MISC, ORG, PER); uncased, up to 512 wordpieces."
        ),
    )
)
register(
    ZooEntry(
        name="longformer_conll03",
        architecture="token_classifier",
        base_encoder="allenai/longformer-large-4096",
        labels=CONLL_LABELS,
        tag_scheme="IOB2",
        spark_nlp_model="longformer_large_token_classifier_conll03",
        spark_nlp_download=(
            "longformer_large_token_classifier_conll03_en_3.3.0_3.0_1633778673017.zip"
        ),
        max_length=4096,
        case_sensitive=True,
        checkpoint=None,
        checkpoint_note=(
            "No public Hugging Face checkpoint. The Spark NLP card says John Snow Labs trained "
            "the model themselves with TFLongformerForTokenClassification and does not say it was "
            "imported from Hugging Face. The stored Hub material has no Longformer-large "
            "CoNLL-2003 token classifier. Pass a locally fine-tuned allenai/longformer-large-4096 "
            "folder."
        ),
        reference=ReferenceScores(
            source=(
                "https://sparknlp.org/2021/10/09/longformer_large_token_classifier_conll03_en.html"
            ),
            split="validation",
            micro_f1=0.9296,
            per_type_f1={"LOC": 0.9405, "MISC": 0.8843, "ORG": 0.8966, "PER": 0.9649},
            note=(
                "conlleval entity-level FB1 from the card's Benchmarking block, given here as "
                "fractions. The split is not named on the card, but the block counts 51362 tokens "
                "and 5942 phrases, i.e. CoNLL-2003 dev (testa). Test-split scores are not "
                "published. Card: 'Case sensitive: true', 'Max sentense length: 4096'. Its code "
                "sample calls setMaxSentenceLength(512)."
            ),
        ),
        licence="Spark NLP card: 'Open Source'. No public checkpoint.",
        description=(
            "Longformer-large with a token-classification head, fine-tuned on CoNLL-2003 "
            "(LOC, MISC, ORG, PER); cased, windows of up to 4096 wordpieces."
        ),
    )
)
register(
    ZooEntry(
        name="elmo_conll03",
        architecture="nerdl",
        base_encoder="ELMo (original, 1B Word Benchmark; TF Hub google/elmo/3)",
        labels=CONLL_LABELS,
        tag_scheme="IOB2",
        spark_nlp_model="ner_conll_elmo",
        spark_nlp_download="ner_conll_elmo_en_3.2.2_2.4_1630419727678.zip",
        spark_nlp_embeddings_download="elmo_en_2.4.0_2.4_1580488815299.zip",
        case_sensitive=True,
        checkpoint=None,
        checkpoint_note=(
            "No Hugging Face token-classification checkpoint: this is a Spark NLP NerDL "
            "(char CNN + BiLSTM + CRF) graph over ELMo embeddings, distributed only as a Spark NLP "
            "zip. Public base embeddings: Spark's 'elmo' wraps https://tfhub.dev/google/elmo/3 "
            "(1 Billion Word Benchmark), pooled with setPoolingLayer('elmo'). The nearest AllenNLP "
            "files are the 'Original' (1B Word Benchmark) ELMo options/weights: "
            "https://s3-us-west-2.amazonaws.com/allennlp/models/elmo/2x4096_512_2048cnn_2xhighway/"
            "elmo_2x4096_512_2048cnn_2xhighway_{options.json,weights.hdf5}. The tagger head comes "
            "from the Spark NLP zip, over Spark's own 'elmo' download converted first (nerzoo "
            "import-sparknlp elmo_en_2.4.0_2.4_1580488815299.zip elmo, then nerzoo import-sparknlp "
            "ner_conll_elmo_... --embeddings elmo; docs/sparknlp.md), or is trained locally."
        ),
        reference=ReferenceScores(
            source="https://sparknlp.org/2021/08/31/ner_conll_elmo_en.html",
            split="test",
            micro_f1=0.9134,
            per_type_f1={"LOC": 0.9262, "MISC": 0.8124, "ORG": 0.8924, "PER": 0.9655},
            note=(
                "conlleval entity-level FB1 from the card's 'Test' block (46435 tokens, 5648 "
                "phrases), given here as fractions. The card's 'Dev' block has micro 0.9492 "
                "(LOC 0.9663, MISC 0.9013, ORG 0.9264, PER 0.9722). The card does not state case "
                "sensitivity or a maximum sentence length."
            ),
        ),
        licence=(
            "Spark NLP card: 'Open Source'. No public tagger weights; ELMo weights come from "
            "AllenNLP / TF Hub under their own terms."
        ),
        description=(
            "NerDL (char CNN + BiLSTM + CRF) over ELMo embeddings (weighted sum of the 3 "
            "layers), trained on CoNLL-2003 (LOC, MISC, ORG, PER)."
        ),
    )
)
register(
    ZooEntry(
        name="distilbert_conll03",
        architecture="nerdl",
        base_encoder="distilbert-base-cased",
        labels=CONLL_LABELS,
        tag_scheme="IOB2",
        spark_nlp_model="ner_conll_distilbert_base_cased",
        spark_nlp_download="ner_conll_distilbert_base_cased_en_3.2.0_2.4_1628079967124.zip",
        spark_nlp_embeddings_download="distilbert_base_cased_en_3.1.0_2.4_1621521790187.zip",
        case_sensitive=True,
        checkpoint=None,
        checkpoint_note=(
            "No Hugging Face token-classification checkpoint: this is a Spark NLP NerDL "
            "(char CNN + BiLSTM + CRF) graph over frozen DistilBERT embeddings, distributed only "
            "as a Spark NLP zip. Public base embeddings: Spark's 'distilbert_base_cased' gives "
            "https://huggingface.co/distilbert-base-cased as its data source (now "
            "distilbert/distilbert-base-cased, apache-2.0). The tagger head comes from the Spark "
            "NLP zip (nerzoo import-sparknlp; docs/sparknlp.md) or is trained locally."
        ),
        reference=ReferenceScores(
            source="https://sparknlp.org/2021/08/04/ner_conll_distilbert_base_cased_en.html",
            split="test",
            micro_f1=0.879,
            per_type_f1={"LOC": 0.9066, "MISC": 0.7577, "ORG": 0.8461, "PER": 0.9378},
            note=(
                "conlleval entity-level FB1 from the card's 'Test' block (46435 tokens, 5648 "
                "phrases), given here as fractions. The card's 'Dev' block has micro 0.9261 "
                "(LOC 0.9484, MISC 0.8755, ORG 0.8902, PER 0.9556). The embeddings card says "
                "'Case sensitive: true'. The NER card states no maximum sentence length."
            ),
        ),
        licence="Spark NLP card: 'Open Source'. Base encoder distilbert-base-cased: apache-2.0.",
        description=(
            "NerDL (char CNN + BiLSTM + CRF) over DistilBERT-base-cased embeddings, trained on "
            "CoNLL-2003 (LOC, MISC, ORG, PER)."
        ),
    )
)
register(
    ZooEntry(
        name="distilbert_fewnerd",
        architecture="token_classifier",
        base_encoder="distilbert-base-cased",
        labels=FEWNERD_LABELS,
        tag_scheme="IO",
        spark_nlp_model="distilbert_base_token_classifier_few_nerd",
        spark_nlp_download=(
            "distilbert_base_token_classifier_few_nerd_en_3.2.0_2.4_1628435975886.zip"
        ),
        max_length=512,
        case_sensitive=True,
        checkpoint=None,
        checkpoint_note=(
            "No public Hugging Face checkpoint matches: the Spark NLP card does not say the model "
            "was imported from Hugging Face and names no HF id. We found no cased DistilBERT "
            "fine-tuned on Few-NERD's 66 fine types on the Hub. The nearest public model, "
            "vikasaeta/distilbert-base-uncased-finetuned-ner (uncased, few_nerd 'supervised', "
            "self-reported F1 0.6632 on the Trainer's evaluation set), is uncased, and we could "
            "not check whether its labels are fine or coarse types, so it is not set here. Pass a "
            "locally fine-tuned folder."
        ),
        reference=ReferenceScores(
            source=(
                "https://sparknlp.org/2021/08/08/distilbert_base_token_classifier_few_nerd_en.html"
            ),
            split="test",
            micro_f1=0.6753,
            per_type_f1={
                "art-broadcastprogram": 0.5947,
                "art-film": 0.6977,
                "art-music": 0.7511,
                "art-painting": 0.3636,
                "art-writtenart": 0.5649,
                "building-airport": 0.7931,
                "building-hospital": 0.7409,
                "building-hotel": 0.6575,
                "building-library": 0.6944,
                "building-restaurant": 0.4576,
                "building-sportsfacility": 0.6681,
                "building-theater": 0.6887,
                "event-attack/battle/war/militaryconflict": 0.7459,
                "event-disaster": 0.5309,
                "event-election": 0.2564,
                "event-protest": 0.2614,
                "event-sportsevent": 0.5777,
                "location-GPE": 0.8139,
                "location-bodiesofwater": 0.7764,
                "location-island": 0.7137,
                "location-mountain": 0.7192,
                "location-park": 0.6567,
                "location-road/railway/highway/transit": 0.6896,
                "organization-company": 0.6545,
                "organization-education": 0.7845,
                "organization-government/governmentagency": 0.4391,
                "organization-media/newspaper": 0.576,
                "organization-politicalparty": 0.6463,
                "organization-religion": 0.5286,
                "organization-showorganization": 0.6183,
                "organization-sportsleague": 0.5868,
                "organization-sportsteam": 0.7345,
                "other-astronomything": 0.7263,
                "other-award": 0.5933,
                "other-biologything": 0.6194,
                "other-chemicalthing": 0.5294,
                "other-currency": 0.691,
                "other-disease": 0.6328,
                "other-educationaldegree": 0.5369,
                "other-god": 0.6422,
                "other-language": 0.7419,
                "other-law": 0.5776,
                "other-livingthing": 0.5947,
                "other-medical": 0.5688,
                "person-actor": 0.7818,
                "person-artist/author": 0.7091,
                "person-athlete": 0.809,
                "person-director": 0.6556,
                "person-politician": 0.658,
                "person-scholar": 0.5136,
                "person-soldier": 0.5702,
                "product-airplane": 0.5908,
                "product-car": 0.6917,
                "product-food": 0.4327,
                "product-game": 0.6698,
                "product-ship": 0.6308,
                "product-software": 0.5758,
                "product-train": 0.4638,
                "product-weapon": 0.56,
            },
            note=(
                "conlleval entity-level FB1 from the card's 'Test' block (463214 tokens, 48764 "
                "phrases), given here as fractions. conlleval cuts each tag at its first '-', so "
                "the card lists types by fine suffix ('film', 'GPE'). We mapped them back to "
                "coarse-fine names. The 7 '*-other' labels (art-, building-, event-, location-, "
                "organization-, person-, product-other) fall into one 'other' row (FB1 0.5820), so "
                "they have no separate score and are left out. The card also prints token-level "
                "per-label F1 (2 decimals), which is not used here. Card: 'Case sensitive: true', "
                "'Max sentense length: 512'."
            ),
        ),
        licence=(
            "Spark NLP card: 'Open Source'. Few-NERD data: CC BY-SA 4.0. No public checkpoint."
        ),
        description=(
            "DistilBERT-base-cased token classifier fine-tuned on Few-NERD (supervised), "
            "66 fine-grained types, IO tags (no B-/I- prefixes)."
        ),
    )
)

# Models trained by this project and shipped inside the package (they work offline).
register(
    ZooEntry(
        name="minilm_conll03",
        architecture="token_classifier",
        base_encoder="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384, uncased)",
        labels=CONLL_LABELS,
        tag_scheme="IOB2",
        spark_nlp_model=None,
        max_length=256,  # the training window: train and infer the same way
        case_sensitive=False,
        bundled="models/minilm_conll03",
        licence="Encoder Apache-2.0; trained on CoNLL-2003 (Reuters, research use)",
        description=(
            "Built in: all-MiniLM-L6-v2 fine-tuned here on CoNLL-2003 with document-context "
            "windows, shipped as dynamic-int8 ONNX. Card: docs/models/minilm_conll03.md."
        ),
    )
)


register(
    ZooEntry(
        name="minilm_fewnerd",
        architecture="token_classifier",
        base_encoder="sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384, uncased)",
        labels=FEWNERD_LABELS,
        tag_scheme="IO",
        spark_nlp_model=None,
        max_length=128,  # the training window (one sentence each): train and infer alike
        stride=32,  # the overlap the trainer validated with, for sentences over 126 pieces
        case_sensitive=False,
        bundled="models/minilm_fewnerd",
        licence="Encoder Apache-2.0; trained on Few-NERD (CC BY-SA 4.0)",
        description=(
            "Built in: all-MiniLM-L6-v2 fine-tuned here on Few-NERD (66 fine types, IO tags), "
            "shipped as dynamic-int8 ONNX. Card: docs/models/minilm_fewnerd.md."
        ),
    )
)


def bundled_path(entry: ZooEntry) -> Path | None:
    """Folder of a model shipped inside the installed package (None if the entry has none)."""
    if entry.bundled is None:
        return None
    return Path(__file__).resolve().parent / entry.bundled
