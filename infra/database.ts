// The job store: Cloud SQL for PostgreSQL 16 on a private address only, with point-in-time recovery
// and deletion protection, its database and user, and the gateway's DATABASE_URL in Secret Manager.
// The user's password is generated at bootstrap into Secret Manager and only read here, so it
// appears in no file of the repository and in no output (it does reach the state, which the state
// bucket's access control guards).
import { DataGoogleSecretManagerSecretVersion } from '@cdktf/provider-google/lib/data-google-secret-manager-secret-version/index.js';
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import { SecretManagerSecretVersion } from '@cdktf/provider-google/lib/secret-manager-secret-version/index.js';
import { SecretManagerSecret } from '@cdktf/provider-google/lib/secret-manager-secret/index.js';
import type { ServiceNetworkingConnection } from '@cdktf/provider-google/lib/service-networking-connection/index.js';
import { SqlDatabaseInstance } from '@cdktf/provider-google/lib/sql-database-instance/index.js';
import { SqlDatabase } from '@cdktf/provider-google/lib/sql-database/index.js';
import { SqlUser } from '@cdktf/provider-google/lib/sql-user/index.js';
import { Fn } from 'cdktf';
import { Construct } from 'constructs';
import type { Environment } from './environments.ts';

export interface DatabaseProps {
  prefix: string;
  region: string;
  vpc: ComputeNetwork;
  /** The peering the private address comes through. */
  privateServices: ServiceNetworkingConnection;
  settings: Environment['database'];
  /** Secret (bootstrap-made) that holds the user's password. */
  passwordSecret: string;
  /** Secret (made here) for the gateway's DATABASE_URL. */
  urlSecret: string;
}

const DATABASE = 'itemgen';
const USER = 'itemgen';

export class Database extends Construct {
  readonly instance: SqlDatabaseInstance;
  readonly urlSecret: SecretManagerSecret;
  /** The current DATABASE_URL version; referring to it (not to `latest`) rolls the gateway when it changes. */
  readonly urlSecretVersion: SecretManagerSecretVersion;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { prefix, region, settings } = props;

    this.instance = new SqlDatabaseInstance(this, 'instance', {
      name: `${prefix}-pg`,
      region,
      databaseVersion: 'POSTGRES_16',
      // Terraform refuses to destroy it; the instance setting also stops deletion from the
      // console and gcloud.
      deletionProtection: settings.deletionProtection,
      dependsOn: [props.privateServices],
      settings: {
        tier: settings.tier,
        // PostgreSQL 16 instances default to Enterprise Plus, which has no custom tiers.
        edition: 'ENTERPRISE',
        availabilityType: settings.highAvailability ? 'REGIONAL' : 'ZONAL',
        diskSize: settings.diskGb,
        diskType: 'PD_SSD',
        diskAutoresize: true,
        deletionProtectionEnabled: settings.deletionProtection,
        ipConfiguration: {
          ipv4Enabled: false,
          privateNetwork: props.vpc.id,
          sslMode: 'ENCRYPTED_ONLY',
        },
        backupConfiguration: {
          enabled: true,
          pointInTimeRecoveryEnabled: true,
          startTime: '02:00',
          transactionLogRetentionDays: 7,
          backupRetentionSettings: { retainedBackups: 14, retentionUnit: 'COUNT' },
        },
        maintenanceWindow: { day: 7, hour: 3, updateTrack: 'stable' },
        // Explicit, so the gateway's pool size (gateway-service.ts) is computed against a known limit.
        databaseFlags: [{ name: 'max_connections', value: String(settings.maxConnections) }],
      },
    });

    const database = new SqlDatabase(this, 'database', {
      name: DATABASE,
      instance: this.instance.name,
      // Never dropped by Terraform; the instance's deletion protection guards the data.
      deletionPolicy: 'ABANDON',
    });

    const password = new DataGoogleSecretManagerSecretVersion(this, 'password', {
      secret: props.passwordSecret,
    });
    const user = new SqlUser(this, 'user', {
      name: USER,
      instance: this.instance.name,
      password: password.secretData,
      // A PostgreSQL role that owns objects cannot be dropped; the instance goes with its users.
      deletionPolicy: 'ABANDON',
    });

    this.urlSecret = new SecretManagerSecret(this, 'url', {
      secretId: props.urlSecret,
      replication: { auto: {} },
    });
    // Composed here so the address and the password always match the instance; encrypted without
    // CA verification, which is what the postgres driver's sslmode=require does (the peering is
    // private to this VPC).
    this.urlSecretVersion = new SecretManagerSecretVersion(this, 'url-version', {
      secret: this.urlSecret.id,
      secretData: `postgresql://${user.name}:${Fn.urlencode(password.secretData)}@${this.instance.privateIpAddress}:5432/${database.name}?sslmode=require`,
    });
  }
}
