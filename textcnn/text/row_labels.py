"""A row's label value made a label (or a multi-label row's labels), and :class:`BadRow`,
what every reader yields for a row it cannot use."""

from __future__ import annotations

from .tokenizer import clean_text

MAX_LABEL_CHARS = 200  # a longer "label" is a text in the wrong column, or no label at all
MAX_ROW_LABELS = 1000  # labels one row may have

Label = str | tuple[str, ...]  # one label, or the labels of a multi-label row


class BadRow(ValueError):
    """A row that cannot be used; ``reason`` is the short key counted when skipping."""

    def __init__(self, where: str, reason: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.reason = reason


def labels_of(where: str, value, multi_label: bool | None, separator: str) -> Label | BadRow:
    """The label of a row, or (``multi_label``, or None: to be detected) the tuple of its
    labels: a list, or a text split at ``separator``. No labels, or too many, is a bad
    row."""
    if multi_label is False:
        if isinstance(value, list):
            return BadRow(where, "several labels", "several labels; pass --multi-label")
        return _label(where, value)
    items = value if isinstance(value, list) else [value]
    if isinstance(value, str):
        items = value.split(separator) if separator else [value]
    labels = []
    for item in items:
        if isinstance(item, str) and not item.strip() and len(items) > 1:
            continue  # "a,,b" or a trailing separator
        label = _label(where, item)
        if isinstance(label, BadRow):
            return label
        if separator and separator in label:
            return BadRow(
                where,
                "separator in a label",
                f"the label {label[:40]!r} holds the label separator "
                f"{separator!r}; choose another with --label-separator",
            )
        if label not in labels:
            labels.append(label)
    if not labels:
        return BadRow(where, "missing label", "an empty list of labels; a row needs at least one")
    if len(labels) > MAX_ROW_LABELS:
        return BadRow(where, "too many labels", f"{len(labels)} labels (at most {MAX_ROW_LABELS})")
    return tuple(labels)


def _label(where: str, value) -> str | BadRow:
    """A label as text: a string (stripped), or a number (2 and 2.0 are the label "2");
    anything else, or a label over :data:`MAX_LABEL_CHARS` characters, is a bad row."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return BadRow(
            where, "bad label", f"a label must be text or a number, not {type(value).__name__}"
        )
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    label = str(value).strip()
    if not label:
        return BadRow(where, "missing label", "missing label; fix the row or pass --skip-bad-rows")
    if len(label) > MAX_LABEL_CHARS:
        return BadRow(
            where,
            "label too long",
            f"a label of {len(label):,} characters (at most {MAX_LABEL_CHARS}): is the label "
            "column the text? name the columns with --text-field and --label-field",
        )
    return clean_text(label)
