"""The invoice PDF as a person sees it: each hard case rendered to PNG pages and compared with
the approved images in `tests/invoices/pdf_snapshots/`, so a layout regression fails.

A page matches when it has the approved size and at most `MAX_CHANGED_FRACTION` of its pixels
differ by more than `PIXEL_TOLERANCE` in any channel (anti-aliasing may move a little; a
column running into another does not). After an intended layout change, refresh the images
with `scripts/pdf-snapshots-refresh` (see the README) and look at every changed PNG before
committing it; this test only compares.
"""

import pypdfium2
import pytest
from PIL import Image, ImageChops

from invoices.documents import document_equation_errors
from invoices.pdf import invoice_pdf_render
from tests.invoices.pdf_cases import cases
from tests.invoices.pdf_pages import approved_paths, render_pages

PIXEL_TOLERANCE = 48
MAX_CHANGED_FRACTION = 0.0005
CASES = cases()


def changed_fraction(image: Image.Image, approved: Image.Image) -> float:
    difference = ImageChops.difference(image, approved).convert("L")
    changed = sum(
        difference.point(lambda value: 255 if value > PIXEL_TOLERANCE else 0).histogram()[255:]
    )
    return changed / (image.width * image.height)


@pytest.mark.parametrize("name", sorted(CASES))
def test_invoice_pdf_matches_its_approved_images(name):
    document = CASES[name]
    assert document_equation_errors(document) == []
    pages = render_pages(invoice_pdf_render(document=document).content)
    approved = approved_paths(name)
    assert approved, f"no approved images for {name}: run scripts/pdf-snapshots-refresh {name}"
    assert len(pages) == len(approved), f"{name}: {len(pages)} pages, {len(approved)} approved"
    for number, (page, path) in enumerate(zip(pages, approved, strict=True), start=1):
        with Image.open(path) as stored:
            expected = stored.convert("RGB")
        assert page.size == expected.size, f"{name} page {number}: size {page.size}"
        fraction = changed_fraction(page, expected)
        assert fraction <= MAX_CHANGED_FRACTION, (
            f"{name} page {number}: {fraction:.4%} of pixels differ from the approved image"
        )


def test_the_long_bill_to_wraps_inside_its_column():
    """The email and address of the long case stay left of the invoice details column."""
    pdf = pypdfium2.PdfDocument(invoice_pdf_render(document=CASES["long-names"]).content)
    try:
        text = pdf[0].get_textpage()
        width = pdf[0].get_width()
        boxes = [text.get_charbox(index) for index in range(text.count_chars())]
        chars = text.get_text_range()
    finally:
        pdf.close()
    label = chars.index("Invoice number")
    details_left = boxes[label][0]
    bill_to = chars.index("BILL TO")
    party_chars = [
        box
        for index, box in enumerate(boxes[bill_to:label], start=bill_to)
        if not chars[index].isspace()
    ]
    assert party_chars
    rightmost = max(box[2] for box in party_chars)
    assert rightmost < details_left < width
