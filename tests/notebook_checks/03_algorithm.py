"""03_algorithm: pretraining beats a model of token frequencies, the hand-written loop and %finetune agree
within the noise of a test accuracy, the costs are measured (the bias probe is chapter 8's). Numbers are read from the
notebook's own objects (VALUES) and compared with what the test computes itself, not with hand-picked ranges.
Its "your turn" exercises pass with their solutions in place."""
import math
from collections import Counter

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct, printed

VALUES = {
    # part 1
    "vocab": "len(gpt.tokenizer)",
    "start": "gpt.start_perplexity",
    "end": "gpt.final_perplexity",
    "train_tokens": "gpt.train_tokens",
    "corpus": "{'chars': gpt.config.corpus_chars, 'seed': gpt.config.seed, 'eval_fraction': gpt.config.eval_fraction}",
    "tokenizer": "gpt.tokenizer.backend_tokenizer.to_str()",
    "samples_before": "gpt.samples_before",
    # part 2
    "hand_history": "history",
    "best_step": "best_step",
    "best_accuracy": "best_accuracy",
    "hand_test": "hand_test",
    "llmnb_test": "llmnb_test",
    "test_labels": "test_df['label'].tolist()",
    # part 3
    "weight_change": "{column: weight_change[column].to_dict() for column in weight_change}",
    "memory_mb": "{'weights': weights_mb, 'gradients': grads_mb, 'adam': adam_mb}",
    "few_test": "few_test",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('03.'))",
}


def unigram_perplexity(corpus, tokenizer_json):
    """Validation perplexity of the best model that ignores context: each token's frequency in the training
    documents (add-one smoothed), on the job's own split, with the notebook's own tokenizer.
    Returns it and the number of training tokens, to show the split is the job's."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from llmnb.pretraining.corpus import read_corpus, split_documents
    from llmnb.pretraining.tokenizer import EOS, encode_stream

    docs, _ = read_corpus(None, corpus["chars"], corpus["seed"])
    train_docs, eval_docs = split_documents(docs, corpus["eval_fraction"], corpus["seed"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json), eos_token=EOS)
    train_ids, eval_ids = encode_stream(tokenizer, train_docs), encode_stream(tokenizer, eval_docs)
    counts, vocab = Counter(train_ids), len(tokenizer)
    mean_loss = -sum(math.log((counts[t] + 1) / (len(train_ids) + vocab)) for t in eval_ids) / len(eval_ids)
    return math.exp(mean_loss), len(train_ids)


def check(nb, workdir, values):
    v = values
    all_outputs = outputs(nb)
    stderr = [o["text"] for o in all_outputs if o.get("name") == "stderr"]
    assert not stderr, stderr  # no warnings for the learner to wade through

    # Part 1: an untrained GPT guesses near-uniformly over its vocabulary (perplexity ~ vocabulary size);
    # trained, it beats every model that ignores context (token frequencies, computed here), and its
    # perplexity at least halves.
    start, end, vocab = v["start"], v["end"], v["vocab"]
    assert 0.5 * vocab < start < 2 * vocab, (start, vocab)
    unigram, train_tokens = unigram_perplexity(v["corpus"], v["tokenizer"])
    assert train_tokens == v["train_tokens"], (train_tokens, v["train_tokens"])  # the job's own split
    assert end < unigram and end <= start / 2, (start, end, unigram)
    assert v["samples_before"], "no samples from the untrained model"
    assert "before training" in printed(nb) or any("before training" in o.get("data", {}).get("text/html", "") for o in all_outputs)

    # Part 2: the hand-written loop evaluated on validation more than once and kept the weights of its best
    # evaluation (early stopping's rule, checked here on its own history).
    evals = [row for row in v["hand_history"] if "val_accuracy" in row]
    assert len(evals) >= 2, evals
    best = max(evals, key=lambda row: row["val_accuracy"])  # the first of equal bests, as the loop keeps
    assert (v["best_step"], v["best_accuracy"]) == (best["step"], best["val_accuracy"]), (v["best_step"], v["best_accuracy"], evals)
    # Both runs learned; their test accuracies differ by no more than two standard errors of a difference of
    # two accuracies on this test set (the text: "a difference of one or two standard errors").
    hand, one_cell, labels = v["hand_test"], v["llmnb_test"], v["test_labels"]
    assert hand > 0.65 and one_cell > 0.65, (hand, one_cell)
    se_difference = math.sqrt((hand * (1 - hand) + one_cell * (1 - one_cell)) / len(labels))
    assert abs(hand - one_cell) <= 2 * se_difference, (hand, one_cell, se_difference)
    images = [o for o in all_outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, len(images)  # the final curves of %pretrain and %finetune (plt.show draws nothing under Agg)

    # Part 3, parameter sharing: every transformer layer moved by a small fraction of its size, the word
    # embeddings less than the layers, the pooler next to the new head most (as the text reads the table).
    for name, change in v["weight_change"].items():
        layers = [c for block, c in change.items() if block.startswith("layer")]
        assert 0 < change["embeddings"] < min(layers) and max(layers) < change["pooler"], (name, change)
        assert max(layers) < 0.2, (name, change)  # "a small correction"
    # Memory: gradients are the size of the weights, AdamW's two moments twice that (exact tensor counts).
    memory = v["memory_mb"]
    assert math.isclose(memory["gradients"], memory["weights"], rel_tol=1e-9), memory
    assert math.isclose(memory["adam"], 2 * memory["weights"], rel_tol=1e-9), memory
    # Transfer: both the few-label and the full-data run beat always answering the commonest test label.
    chance = max(Counter(labels).values()) / len(labels)
    assert v["few_test"] > chance and one_cell > chance, (v["few_test"], one_cell, chance)
    assert v["exercises"] == ["03.1", "03.2", "03.3", "03.4", "03.5", "03.e1", "03.e2", "03.e3"], v["exercises"]
    assert_exercises_correct(nb, "03.e1", "03.e2", "03.e3")
