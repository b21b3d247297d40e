"""A supplier invoice's total before tax, typed at sync like its other amounts, so matching reads
the typed columns only; rows already stored get it from their payload."""

from decimal import Decimal, InvalidOperation

from django.db import migrations, models

BATCH = 1000


def _net(payload: dict) -> Decimal | None:
    value = payload.get("total_amount_excluding_taxes")
    raw = value.get("value") if isinstance(value, dict) else None
    try:
        net = Decimal(str(raw).replace(",", ".")) if raw not in (None, "") else None
    except (InvalidOperation, ValueError):
        return None
    if net is None or not net.is_finite() or abs(net) >= Decimal("1e15"):
        return None
    net = net.quantize(Decimal("0.0001"))
    return -abs(net) if payload.get("is_credit_note") else net


def fill_net_amounts(apps, schema_editor):
    entry_model = apps.get_model("connectors", "QontoEntry")
    rows = entry_model.objects.filter(kind="supplier_invoice", net_amount__isnull=True)
    batch = []
    for row in rows.only("id", "payload").iterator(chunk_size=BATCH):
        net = _net(row.payload if isinstance(row.payload, dict) else {})
        if net is not None:
            row.net_amount = net
            batch.append(row)
        if len(batch) >= BATCH:
            entry_model.objects.bulk_update(batch, ["net_amount"])
            batch = []
    if batch:
        entry_model.objects.bulk_update(batch, ["net_amount"])


class Migration(migrations.Migration):
    dependencies = [("connectors", "0008_supplier_block_and_qonto_plan")]

    operations = [
        migrations.AddField(
            model_name="qontoentry",
            name="net_amount",
            field=models.DecimalField(
                blank=True,
                decimal_places=4,
                help_text="a supplier invoice's total_amount_excluding_taxes",
                max_digits=19,
                null=True,
            ),
        ),
        migrations.RunPython(fill_net_amounts, migrations.RunPython.noop),
    ]
