"""The pre-training sizing rule of experiments/cifar/sizing.py."""

from experiments.cifar import sizing


def _r(passes, acc, se=0.005):
    return {"image_passes": passes, "knn_acc": acc, "knn_se": se, "train_limit": passes, "epochs_done": 1, "run": str(passes)}


def test_the_most_accurate_sizing_is_chosen():
    assert sizing.choose([_r(48_000, 0.37), _r(128_000, 0.40), _r(64_000, 0.38)])["image_passes"] == 128_000


def test_a_cheaper_sizing_within_one_standard_error_is_kept_instead():
    chosen = sizing.choose([_r(48_000, 0.396), _r(128_000, 0.40), _r(64_000, 0.399)])
    assert chosen["image_passes"] == 48_000
    # just outside 1 SE: the better one wins
    assert sizing.choose([_r(48_000, 0.3949), _r(128_000, 0.40)])["image_passes"] == 128_000
