"""The invoice PDF's pages as images, for the snapshot test and the command that refreshes
its approved images (`scripts/pdf-snapshots-refresh`)."""

from pathlib import Path

import pypdfium2
from PIL import Image

SNAPSHOTS = Path(__file__).resolve().parent / "pdf_snapshots"
SCALE = 1.5  # 108 dpi: small print still several pixels tall


def render_pages(content: bytes) -> list[Image.Image]:
    pdf = pypdfium2.PdfDocument(content)
    try:
        return [pdf[index].render(scale=SCALE).to_pil().convert("RGB") for index in range(len(pdf))]
    finally:
        pdf.close()


def approved_paths(name: str) -> list[Path]:
    """The approved page images of one case, in page order."""
    return sorted(
        SNAPSHOTS.glob(f"{name}-p*.png"), key=lambda path: int(path.stem.rpartition("-p")[2])
    )
