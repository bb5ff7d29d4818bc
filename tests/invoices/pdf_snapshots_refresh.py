"""Write the approved page images of every PDF case (or of the cases named) from the current
template: `scripts/pdf-snapshots-refresh [case ...]`. Look at every changed PNG before
committing it; the snapshot test only compares and never writes."""

import os
import sys


def main(names: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    import django

    django.setup()
    from invoices.pdf import invoice_pdf_render
    from tests.invoices.pdf_cases import cases
    from tests.invoices.pdf_pages import SNAPSHOTS, approved_paths, render_pages

    every = cases()
    unknown = sorted(set(names) - set(every))
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(sorted(every))}")
        return 2
    SNAPSHOTS.mkdir(exist_ok=True)
    for name in names or sorted(every):
        pages = render_pages(invoice_pdf_render(document=every[name]).content)
        for stale in approved_paths(name):
            stale.unlink()
        for number, page in enumerate(pages, start=1):
            page.save(SNAPSHOTS / f"{name}-p{number}.png", optimize=True)
        print(f"{name}: wrote {len(pages)} page(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
