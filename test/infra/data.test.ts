import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketName, imageRepository, secretName } from '../../infra/environments.ts';
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

test('the database user\'s password comes from the bootstrap secret, never from the configuration', () => {
  for (const [env, stack] of eachStack()) {
    const [password, ...others] = dataSources(stack, 'google_secret_manager_secret_version');
    assert.is(others.length, 0);
    assert.is(password!.secret, secretName(env, 'databasePassword'));
    const user = one(stack, 'google_sql_user');
    assert.match(user.password, /^\$\{data\.google_secret_manager_secret_version\.[A-Za-z0-9_-]+\.secret_data\}$/);
    assert.is(user.name, 'itemgen');
    assert.is(one(stack, 'google_sql_database').name, 'itemgen');
    // Every `password` field anywhere is that reference.
    const passwords = JSON.stringify(stack).match(/"password":"[^"]*"/g) ?? [];
    assert.equal(passwords, [`"password":"${user.password}"`]);
  }
});

test('DATABASE_URL is composed from references only (no literal credential) and requires TLS', () => {
  for (const [env, stack] of eachStack()) {
    const secret = one(stack, 'google_secret_manager_secret');
    assert.is(secret.secret_id, secretName(env, 'databaseUrl'));
    const [version, ...others] = resources(stack, 'google_secret_manager_secret_version');
    assert.is(others.length, 0);
    assert.is(resolve(stack, version!.secret), secretName(env, 'databaseUrl'));
    const data: string = version!.secret_data;
    assert.match(data, /urlencode\(data\.google_secret_manager_secret_version\.[A-Za-z0-9_-]+\.secret_data\)/);
    assert.match(data, /\$\{google_sql_database_instance\.[A-Za-z0-9_-]+\.private_ip_address\}/);
    const literal = data.replace(/\$\{[^}]+\}/g, '·');
    assert.is(literal, 'postgresql://·:·@·:5432/·?sslmode=require');
    const resolved = resolve(stack, data);
    assert.ok(resolved.startsWith('postgresql://itemgen:'), resolved);
    assert.ok(resolved.endsWith(':5432/itemgen?sslmode=require'), resolved);
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
    assert.equal(images.lifecycle_rule, [{ condition: { age: env.bucket.imageRetentionDays }, action: { type: 'Delete' } }]);
    assert.is(one(stack, 'google_storage_bucket', ['name', bucketName(env, 'models')]).lifecycle_rule, undefined);
  }
});

test('the runner\'s role on the bucket holds exactly what putImage needs', () => {
  for (const [, stack] of eachStack()) {
    const role = one(stack, 'google_project_iam_custom_role');
    assert.equal([...role.permissions].sort(), ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get']);
  }
});

test('one Docker repository, at the path imageRepository() builds', () => {
  for (const [env, stack] of eachStack()) {
    const repository = one(stack, 'google_artifact_registry_repository');
    assert.is(repository.format, 'DOCKER');
    const path = `${repository.location}-docker.pkg.dev/${env.project}/${repository.repository_id}`;
    assert.is(imageRepository(env, 'gateway'), `${path}/gateway`);
    assert.is(imageRepository(env, 'runner'), `${path}/runner`);
  }
});

test.run();
