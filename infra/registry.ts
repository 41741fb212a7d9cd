// The Artifact Registry Docker repositories: `images`, which both of our images (gateway, runner)
// are pushed to, by digest, and `mirror`, a pull-through cache of Docker Hub that third-party images
// (RabbitMQ) are pulled through, so nodes never pull from Docker Hub themselves (its rate limits, its
// availability) and a pinned digest stays available. Their names are the ones imageRepository() and
// mirrorRepository() in environments.ts build paths from. Who may pull and who may push is granted
// on each repository, not the project.
import { ArtifactRegistryRepositoryIamMember } from '@cdktf/provider-google/lib/artifact-registry-repository-iam-member/index.js';
import { ArtifactRegistryRepository } from '@cdktf/provider-google/lib/artifact-registry-repository/index.js';
import { Construct } from 'constructs';

export interface ImageRegistryProps {
  prefix: string;
  region: string;
  /** IAM member that pulls images (the GKE nodes). Cloud Run pulls with its own service agent. */
  reader: string;
  /** IAM member that pushes images (the deployer account CI impersonates). */
  writer: string;
  /**
   * Members that copy images out of this repository by digest: the deployers of the environments
   * promoted from this one (Environment.imagesFrom), in their own projects.
   */
  copiers: string[];
}

/** Versions of each image kept whatever their age: well past any digest still deployed or rolled back to. */
export const KEEP_RECENT_VERSIONS = 30;
/** Older versions than this, beyond the most recent ones, are deleted. */
export const DELETE_AFTER_DAYS = 90;

export class ImageRegistry extends Construct {
  readonly repository: ArtifactRegistryRepository;
  readonly mirror: ArtifactRegistryRepository;

  constructor(scope: Construct, id: string, props: ImageRegistryProps) {
    super(scope, id);

    this.repository = new ArtifactRegistryRepository(this, 'repository', {
      repositoryId: `${props.prefix}-images`,
      location: props.region,
      format: 'DOCKER',
      description: 'itemgen gateway and runner images',
      // A tag, once pushed, names one digest forever; deploys use digests anyway.
      dockerConfig: { immutableTags: true },
      // Applied, not only reported. A KEEP policy wins over a DELETE one, so the most recent
      // versions of each image stay however old they are.
      cleanupPolicyDryRun: false,
      cleanupPolicies: [
        { id: 'keep-recent', action: 'KEEP', mostRecentVersions: { keepCount: KEEP_RECENT_VERSIONS } },
        { id: 'delete-old', action: 'DELETE', condition: { tagState: 'ANY', olderThan: `${DELETE_AFTER_DAYS * 24 * 3600}s` } },
      ],
    });

    this.mirror = new ArtifactRegistryRepository(this, 'mirror', {
      repositoryId: `${props.prefix}-mirror`,
      location: props.region,
      format: 'DOCKER',
      mode: 'REMOTE_REPOSITORY',
      description: 'Docker Hub, cached: RabbitMQ and other public images, pulled by digest',
      remoteRepositoryConfig: { dockerRepository: { publicRepository: 'DOCKER_HUB' } },
    });

    const grant = (grantId: string, repository: ArtifactRegistryRepository, role: string, member: string) =>
      new ArtifactRegistryRepositoryIamMember(this, grantId, {
        location: repository.location,
        repository: repository.name,
        role,
        member,
      });
    grant('reader', this.repository, 'roles/artifactregistry.reader', props.reader);
    grant('writer', this.repository, 'roles/artifactregistry.writer', props.writer);
    grant('mirror-reader', this.mirror, 'roles/artifactregistry.reader', props.reader);
    for (const [i, member] of props.copiers.entries()) grant(`copier-${i}`, this.repository, 'roles/artifactregistry.reader', member);
  }
}
