// The two buckets: `images` (generated images, deleted after the environment's retention) and
// `models` (the model folders runners copy at start, k8s/runner.ts). Neither is ever public: the
// gateway hands out V4 signed links. Access is granted on each bucket, to exactly the workloads that
// touch it; model folders are uploaded by an operator, outside Terraform.
import { ProjectIamCustomRole } from '@cdktf/provider-google/lib/project-iam-custom-role/index.js';
import { StorageBucketIamMember } from '@cdktf/provider-google/lib/storage-bucket-iam-member/index.js';
import { StorageBucket, type StorageBucketConfig } from '@cdktf/provider-google/lib/storage-bucket/index.js';
import { Construct } from 'constructs';
import { bucketName, type Environment } from './environments.ts';

/** How the names of thumbnails end (src/storage/types.ts thumbnailKey; test/infra/data.test.ts checks they agree). */
export const THUMBNAIL_SUFFIX = '.thumb256.webp';

export interface BucketsProps {
  env: Environment;
  /** IAM member of the runner: stores images, reads models. */
  runner: string;
  /** IAM member of the gateway: signs links to images, stores their thumbnails, deletes both (DELETE /v1/generations/{id}, retention). */
  gateway: string;
}

export class Buckets extends Construct {
  readonly images: StorageBucket;
  readonly models: StorageBucket;

  constructor(scope: Construct, id: string, props: BucketsProps) {
    super(scope, id);
    const { env } = props;
    const privateBucket = (kind: 'images' | 'models', extra: Partial<StorageBucketConfig> = {}) =>
      new StorageBucket(this, kind, {
        name: bucketName(env, kind),
        location: env.region,
        uniformBucketLevelAccess: true,
        publicAccessPrevention: 'enforced',
        forceDestroy: false,
        ...extra,
      });
    const grant = (grantId: string, bucket: StorageBucket, role: string, member: string) =>
      new StorageBucketIamMember(this, grantId, { bucket: bucket.name, role, member });

    this.images = privateBucket('images', {
      lifecycleRule: [{ condition: { age: env.retentionDays }, action: { type: 'Delete' } }],
      // The web app fetch()es images and thumbnails from the gateway, which redirects to a signed
      // URL here: the browser then reads the answer only if the bucket allows the page's origin.
      // Any origin: the signed URL is the authorization (no cookies or credentials are involved).
      cors: [{ origin: ['*'], method: ['GET', 'HEAD'], responseHeader: ['Content-Type'], maxAgeSeconds: 3600 }],
    });
    this.models = privateBucket('models');

    // The runner's upload (src/storage/gcs.ts putImage) is conditional: it creates the object, and
    // when one is already there it reads its metadata and, if the bytes differ, replaces it, which
    // needs delete. roles/storage.objectCreator (create only) would fail every retried upload;
    // roles/storage.objectUser would add listing and updating. Hence a role with exactly these three.
    const imageWriter = new ProjectIamCustomRole(this, 'image-writer-role', {
      roleId: 'itemgenImageWriter',
      title: 'itemgen image writer',
      description: 'Create images, read their metadata, replace an earlier attempt (src/storage/gcs.ts putImage)',
      permissions: ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get'],
    });
    grant('runner-writes-images', this.images, imageWriter.name, props.runner);
    // A signed URL reads with its signer's permissions, so the signer must be able to read.
    grant('gateway-reads-images', this.images, 'roles/storage.objectViewer', props.gateway);
    // The gateway deletes a generation's images (DELETE /v1/generations/{id}, the retention sweep):
    // delete alone, no create or update.
    const imageDeleter = new ProjectIamCustomRole(this, 'image-deleter-role', {
      roleId: 'itemgenImageDeleter',
      title: 'itemgen image deleter',
      description: 'Delete generated images (src/storage/gcs.ts delete)',
      permissions: ['storage.objects.delete'],
    });
    grant('gateway-deletes-images', this.images, imageDeleter.name, props.gateway);
    // The gateway stores the gallery thumbnails it makes (src/gateway/thumbnails.ts) beside the
    // images: create only (its upload never replaces), and only objects named as thumbnails
    // (thumbnailKey in src/storage/types.ts), so it can never write an image.
    const thumbnailWriter = new ProjectIamCustomRole(this, 'thumbnail-writer-role', {
      roleId: 'itemgenThumbnailWriter',
      title: 'itemgen thumbnail writer',
      description: 'Create gallery thumbnails (src/storage/gcs.ts putThumbnail)',
      permissions: ['storage.objects.create'],
    });
    new StorageBucketIamMember(this, 'gateway-writes-thumbnails', {
      bucket: this.images.name,
      role: thumbnailWriter.name,
      member: props.gateway,
      condition: {
        title: 'thumbnails only',
        description: 'Objects named generated/{id}/{n}.thumb256.webp',
        expression: `resource.name.endsWith("${THUMBNAIL_SUFFIX}")`,
      },
    });
    // `gcloud storage rsync` of a model folder lists and reads.
    grant('runner-reads-models', this.models, 'roles/storage.objectViewer', props.runner);
  }
}
