// The job store: Cloud SQL for PostgreSQL 16 on a private address only, with point-in-time recovery
// and deletion protection, its database and user. The user's password is generated at bootstrap
// into Secret Manager and reaches Cloud SQL through a write-only argument: Terraform sends it and
// keeps it in neither its state nor its plan, and reads no secret payload at all (review plans run
// without one). The gateway reads the same secret itself (gateway-service.ts).
import type { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import type { ServiceNetworkingConnection } from '@cdktf/provider-google/lib/service-networking-connection/index.js';
import { SqlDatabaseInstance } from '@cdktf/provider-google/lib/sql-database-instance/index.js';
import { SqlDatabase } from '@cdktf/provider-google/lib/sql-database/index.js';
import { SqlUser } from '@cdktf/provider-google/lib/sql-user/index.js';
import { Construct } from 'constructs';
import type { Environment } from './environments.ts';

export interface DatabaseProps {
  prefix: string;
  region: string;
  vpc: ComputeNetwork;
  /** The peering the private address comes through. */
  privateServices: ServiceNetworkingConnection;
  settings: Environment['database'];
  /**
   * The user's password (the `database_password` variable: deploy plans export it from the
   * bootstrap secret; review plans leave it empty, which changes nothing while the version below
   * stays the same).
   */
  password: string;
}

export const DATABASE = 'itemgen';
export const USER = 'itemgen';
/**
 * Write-only arguments are sent only when their version changes. Bump this to rotate: put the new
 * password in the database-password secret, bump, apply, then roll the gateway (it reads `latest`).
 */
export const PASSWORD_VERSION = 1;

export class Database extends Construct {
  readonly instance: SqlDatabaseInstance;
  readonly database: SqlDatabase;
  readonly user: SqlUser;

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
          // Set, not left to the default: the gateway verifies the server against this instance's
          // own CA (DATABASE_CA_CERT, server_ca_cert) and checks the name `<project>:<instance>`
          // (DATABASE_TLS_SERVER_NAME), which is the server certificate's CN only with the
          // per-instance CA; a shared or customer-managed CA issues other names.
          serverCaMode: 'GOOGLE_MANAGED_INTERNAL_CA',
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

    this.database = new SqlDatabase(this, 'database', {
      name: DATABASE,
      instance: this.instance.name,
      // Never dropped by Terraform; the instance's deletion protection guards the data.
      deletionPolicy: 'ABANDON',
    });

    this.user = new SqlUser(this, 'user', {
      name: USER,
      instance: this.instance.name,
      passwordWo: props.password,
      passwordWoVersion: PASSWORD_VERSION,
      // A PostgreSQL role that owns objects cannot be dropped; the instance goes with its users.
      deletionPolicy: 'ABANDON',
    });
  }
}
