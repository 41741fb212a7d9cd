import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PASSWORD_VERSION } from '../../infra/database.ts';
import { bucketName, imageRepository, mirrorRepository } from '../../infra/environments.ts';
import { THUMBNAIL_SUFFIX } from '../../infra/storage.ts';
import { imageKey, thumbnailKey } from '../../src/storage/types.ts';
import { eachStack, one, resolve, resources, type StackJson } from '../helpers/terraform.ts';

const dataSources = (stack: StackJson, type: string) => Object.values(stack.data?.[type] ?? {});

test('Cloud SQL: PostgreSQL 16, private address only, TLS required', () => {
  for (const [env, stack] of eachStack()) {
    const instance = one(stack, 'google_sql_database_instance');
    assert.is(instance.database_version, 'POSTGRES_16');
    assert.is(instance.region, env.region);
    const ip = instance.settings.ip_configuration;
    assert.is(ip.ipv4_enabled, false);
    assert.is(resolve(stack, ip.private_network), `${env.prefix}-vpc`);
    assert.is(ip.authorized_networks, undefined);
    assert.is(ip.ssl_mode, 'ENCRYPTED_ONLY');
    assert.is(instance.settings.tier, env.database.tier);
    assert.is(instance.settings.edition, 'ENTERPRISE');
    assert.is(instance.settings.availability_type, env.database.highAvailability ? 'REGIONAL' : 'ZONAL');
  }
});

test('Cloud SQL: backups with point-in-time recovery; deletion protection in Terraform and on the instance', () => {
  for (const [, stack] of eachStack()) {
    const instance = one(stack, 'google_sql_database_instance');
    const backups = instance.settings.backup_configuration;
    assert.is(backups.enabled, true);
    assert.is(backups.point_in_time_recovery_enabled, true);
    assert.ok(backups.transaction_log_retention_days >= 1);
    assert.is(instance.deletion_protection, true);
    assert.is(instance.settings.deletion_protection_enabled, true);
  }
});

test('max_connections is set to the environment\'s value', () => {
  for (const [env, stack] of eachStack()) {
    const flags = one(stack, 'google_sql_database_instance').settings.database_flags;
    assert.equal(flags, [{ name: 'max_connections', value: String(env.database.maxConnections) }]);
  }
});

test('the database user\'s password is write-only, from the sensitive database_password variable (ephemeral, empty by default)', () => {
  for (const [, stack] of eachStack()) {
    const user = one(stack, 'google_sql_user');
    assert.is(user.name, 'itemgen');
    assert.is(one(stack, 'google_sql_database').name, 'itemgen');
    assert.is(user.password, undefined);
    assert.is(user.password_wo, '${var.database_password}');
    assert.is(user.password_wo_version, PASSWORD_VERSION);
    assert.equal(stack.variable?.database_password, {
      type: 'string',
      sensitive: true,
      // Kept out of saved plan files too (write-only arguments accept ephemeral values).
      ephemeral: true,
      default: '',
      description: stack.variable?.database_password?.description,
    });
    // No other field anywhere carries a password.
    assert.equal(JSON.stringify(stack).match(/"password[a-z_]*":/g)?.sort(), ['"password_wo":', '"password_wo_version":']);
  }
});

test('no secret payload in state or plans: no secret version, read or made, and no secret made by Terraform', () => {
  for (const [, stack] of eachStack()) {
    assert.equal(resources(stack, 'google_secret_manager_secret_version'), []);
    assert.equal(dataSources(stack, 'google_secret_manager_secret_version'), []);
    assert.equal(dataSources(stack, 'google_secret_manager_secret_version_access'), []);
    // The secrets are bootstrap-made (bootstrap.ts); Terraform only grants access to them.
    assert.equal(resources(stack, 'google_secret_manager_secret'), []);
  }
});

test('Cloud SQL\'s server certificate comes from the per-instance CA (its CN is <project>:<instance>)', () => {
  for (const [, stack] of eachStack()) {
    assert.is(one(stack, 'google_sql_database_instance').settings.ip_configuration.server_ca_mode, 'GOOGLE_MANAGED_INTERNAL_CA');
  }
});

test('buckets: the names k8s/ uses, never public, uniform access', () => {
  for (const [env, stack] of eachStack()) {
    const buckets = resources(stack, 'google_storage_bucket');
    assert.equal(buckets.map((b) => b.name).sort(), [bucketName(env, 'images'), bucketName(env, 'models')]);
    for (const bucket of buckets) {
      assert.is(bucket.public_access_prevention, 'enforced');
      assert.is(bucket.uniform_bucket_level_access, true);
      assert.is(bucket.force_destroy, false);
      assert.is(bucket.location, env.region);
    }
  }
});

test('images are deleted after the retention; models are kept', () => {
  for (const [env, stack] of eachStack()) {
    const images = one(stack, 'google_storage_bucket', ['name', bucketName(env, 'images')]);
    assert.equal(images.lifecycle_rule, [{ condition: { age: env.retentionDays }, action: { type: 'Delete' } }]);
    assert.is(one(stack, 'google_storage_bucket', ['name', bucketName(env, 'models')]).lifecycle_rule, undefined);
  }
});

test('the images bucket answers browsers of any origin (GET, HEAD): the web app fetch()es the signed URLs the gateway redirects to', () => {
  for (const [env, stack] of eachStack()) {
    const images = one(stack, 'google_storage_bucket', ['name', bucketName(env, 'images')]);
    assert.equal(images.cors, [{ origin: ['*'], method: ['GET', 'HEAD'], response_header: ['Content-Type'], max_age_seconds: 3600 }]);
    assert.is(one(stack, 'google_storage_bucket', ['name', bucketName(env, 'models')]).cors, undefined);
  }
});

test('the gateway may create thumbnails, and nothing else, in the images bucket', () => {
  assert.is(thumbnailKey(imageKey('9b2f6c1e-4a7d-4e3b-8c5a-2d1f0e9a7b6c', 0)).endsWith(THUMBNAIL_SUFFIX), true, 'the condition matches the names the store uses');
  assert.is(imageKey('9b2f6c1e-4a7d-4e3b-8c5a-2d1f0e9a7b6c', 0).endsWith(THUMBNAIL_SUFFIX), false, 'and not an image\'s');
  for (const [env, stack] of eachStack()) {
    const role = one(stack, 'google_project_iam_custom_role', ['role_id', 'itemgenThumbnailWriter']);
    assert.equal(role.permissions, ['storage.objects.create']);
    const grant = resources(stack, 'google_storage_bucket_iam_member').find((g) => resolve(stack, g.role) === 'itemgenThumbnailWriter');
    assert.ok(grant);
    assert.is(resolve(stack, grant.bucket), bucketName(env, 'images'));
    assert.is(grant.condition.expression, `resource.name.endsWith("${THUMBNAIL_SUFFIX}")`);
  }
});

test('the runner\'s role on the bucket holds exactly what putImage needs', () => {
  for (const [, stack] of eachStack()) {
    const role = one(stack, 'google_project_iam_custom_role', ['role_id', 'itemgenImageWriter']);
    assert.equal([...role.permissions].sort(), ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get']);
  }
});

const repository = (stack: StackJson, id: string) => one(stack, 'google_artifact_registry_repository', ['repository_id', id]);

test('the images repository, at the path imageRepository() builds: immutable tags, cleanup applied', () => {
  for (const [env, stack] of eachStack()) {
    assert.is(resources(stack, 'google_artifact_registry_repository').length, 2);
    const images = repository(stack, `${env.prefix}-images`);
    assert.is(images.format, 'DOCKER');
    assert.is(images.mode, undefined);
    const path = `${images.location}-docker.pkg.dev/${env.project}/${images.repository_id}`;
    assert.is(imageRepository(env, 'gateway'), `${path}/gateway`);
    assert.is(imageRepository(env, 'runner'), `${path}/runner`);
    assert.equal(images.docker_config, { immutable_tags: true });
    assert.is(images.cleanup_policy_dry_run, false);
    assert.equal(images.cleanup_policies, [
      { id: 'keep-recent', action: 'KEEP', most_recent_versions: { keep_count: 30 } },
      { id: 'delete-old', action: 'DELETE', condition: { tag_state: 'ANY', older_than: `${90 * 86400}s` } },
    ]);
  }
});

test('the mirror: a remote repository of Docker Hub, at the path mirrorRepository() builds, that nodes read', () => {
  for (const [env, stack] of eachStack()) {
    const mirror = repository(stack, `${env.prefix}-mirror`);
    assert.is(mirror.format, 'DOCKER');
    assert.is(mirror.mode, 'REMOTE_REPOSITORY');
    assert.equal(mirror.remote_repository_config, { docker_repository: { public_repository: 'DOCKER_HUB' } });
    assert.is(mirrorRepository(env), `${mirror.location}-docker.pkg.dev/${env.project}/${mirror.repository_id}`);
    const readers = resources(stack, 'google_artifact_registry_repository_iam_member')
      .filter((g) => resolve(stack, g.repository) === mirror.repository_id)
      .map((g) => [resolve(stack, g.member), g.role]);
    assert.equal(readers, [['serviceAccount:itemgen-nodes', 'roles/artifactregistry.reader']]);
  }
});

test('no moving :latest anywhere in a stack', () => {
  for (const [, stack] of eachStack()) assert.not.match(JSON.stringify(stack), /:latest\b/);
});

test.run();
