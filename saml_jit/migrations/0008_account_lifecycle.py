"""One lifecycle state per account (issue: the account lifecycle).

Existing accounts get a row: active ones ``active``; inactive ones
``deprovisioned``, by SCIM when their last ``deactivated`` event came from
SCIM, else by the system. ``created_by`` comes from the account's first
``created`` event (``jit`` or ``scim``), else ``local``. Identities get
``bound_at`` (their first assertion time, which was also when they were bound).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models, router


BATCH = 2000


def _created_by(events, user_id):
    first = events.filter(user_id=user_id, kind="created").order_by("id").values_list("source", flat=True).first()
    return {"saml": "jit", "scim": "scim"}.get(first or "", "local")


def _row(Lifecycle, events, user, now):
    if user.is_active:
        state, source, reason = "active", "system", "migrated"
    else:
        last = events.filter(user_id=user.pk, kind="deactivated").order_by("-id").values_list("source", flat=True)
        state, source, reason = "deprovisioned", "scim" if last.first() == "scim" else "system", "migrated_inactive"
    return Lifecycle(
        user_id=user.pk, state=state, source=source, reason_code=reason, since=now, created_by=_created_by(events, user.pk)
    )


def create_rows(apps, schema_editor):
    alias = schema_editor.connection.alias
    User = apps.get_model(settings.AUTH_USER_MODEL)
    if not router.allow_migrate_model(alias, User):
        return
    Lifecycle = apps.get_model("saml_jit", "AccountLifecycle")
    Identity = apps.get_model("saml_jit", "FederatedIdentity")
    events = apps.get_model("saml_jit", "ProvisioningEvent").objects.using(alias)
    Identity.objects.using(alias).update(bound_at=models.F("first_asserted_at"))
    now = django.utils.timezone.now()
    users = User._default_manager.using(alias).order_by("pk")
    batch = []
    for user in users.iterator(chunk_size=BATCH):
        batch.append(_row(Lifecycle, events, user, now))
        if len(batch) >= BATCH:
            Lifecycle.objects.using(alias).bulk_create(batch)
            batch = []
    Lifecycle.objects.using(alias).bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('saml_jit', '0007_logout_events'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AccountLifecycle',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('active', 'active'), ('pending_approval', 'pending approval'), ('suspended', 'suspended'), ('deprovisioned', 'deprovisioned')], default='active', max_length=20, verbose_name='state')),
                ('since', models.DateTimeField(default=django.utils.timezone.now, verbose_name='since')),
                ('reason_code', models.CharField(blank=True, max_length=64, verbose_name='reason code')),
                ('source', models.CharField(choices=[('saml', 'SAML'), ('scim', 'SCIM'), ('admin', 'administrator'), ('dormancy', 'dormancy'), ('system', 'system')], default='system', max_length=16, verbose_name='set by')),
                ('actor', models.CharField(blank=True, max_length=150, verbose_name='actor')),
                ('created_by', models.CharField(blank=True, max_length=16, verbose_name='created by')),
                ('last_scim_at', models.DateTimeField(blank=True, null=True, verbose_name='last SCIM touch')),
            ],
            options={
                'verbose_name': 'account lifecycle',
                'verbose_name_plural': 'account lifecycles',
                'ordering': ['-since'],
                'permissions': [('manage_lifecycle', 'Can approve, suspend, deprovision and reactivate accounts')],
            },
        ),
        migrations.AddField(
            model_name='federatedidentity',
            name='bound_at',
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name='bound at'),
        ),
        migrations.AlterField(
            model_name='federatedidentity',
            name='first_asserted_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='first asserted at'),
        ),
        migrations.AlterField(
            model_name='federatedidentity',
            name='last_asserted_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='last asserted at'),
        ),
        migrations.AlterField(
            model_name='provisioningevent',
            name='kind',
            field=models.CharField(choices=[('created', 'created'), ('linked', 'linked'), ('updated', 'updated'), ('login', 'login'), ('denied', 'denied'), ('rejected', 'rejected'), ('deactivated', 'deprovisioned'), ('reactivated', 'reactivated'), ('suspended', 'suspended'), ('approved', 'approved'), ('unlinked', 'identity unlinked'), ('expired', 'privilege expired'), ('groups_changed', 'groups changed'), ('deleted', 'deleted'), ('token_refused', 'SCIM token refused'), ('logout', 'logout')], max_length=32, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='provisioningevent',
            name='source',
            field=models.CharField(choices=[('saml', 'SAML'), ('scim', 'SCIM'), ('admin', 'admin'), ('dormancy', 'dormancy'), ('system', 'system')], default='saml', max_length=16, verbose_name='source'),
        ),
        migrations.AddIndex(
            model_name='federatedidentity',
            index=models.Index(fields=['idp_entity_id', 'last_asserted_at'], name='saml_jit_identity_evidence'),
        ),
        migrations.AddField(
            model_name='accountlifecycle',
            name='user',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='saml_lifecycle', to=settings.AUTH_USER_MODEL, verbose_name='user'),
        ),
        migrations.CreateModel(
            name='PendingAccount',
            fields=[
            ],
            options={
                'verbose_name': 'account awaiting approval',
                'verbose_name_plural': 'accounts awaiting approval',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('saml_jit.accountlifecycle',),
        ),
        migrations.AddIndex(
            model_name='accountlifecycle',
            index=models.Index(fields=['state', 'since'], name='saml_jit_lifecycle_state'),
        ),
        migrations.RunPython(create_rows, migrations.RunPython.noop, elidable=False),
    ]
