// The Artifact Registry Docker repository both images (gateway, runner) are pushed to; its name is
// the one imageRepository() in environments.ts builds paths from. Who may pull and who may push is
// granted on the repository, not the project.
import { ArtifactRegistryRepositoryIamMember } from '@cdktf/provider-google/lib/artifact-registry-repository-iam-member/index.js';
import { ArtifactRegistryRepository } from '@cdktf/provider-google/lib/artifact-registry-repository/index.js';
import { Construct } from 'constructs';

export interface ImageRegistryProps {
  prefix: string;
  region: string;
  /** IAM member that pulls images (the GKE nodes). Cloud Run pulls with its own service agent. */
  reader: string;
  /** IAM member that pushes images (CI). */
  writer: string;
}

export class ImageRegistry extends Construct {
  readonly repository: ArtifactRegistryRepository;

  constructor(scope: Construct, id: string, props: ImageRegistryProps) {
    super(scope, id);

    this.repository = new ArtifactRegistryRepository(this, 'repository', {
      repositoryId: `${props.prefix}-images`,
      location: props.region,
      format: 'DOCKER',
      description: 'itemgen gateway and runner images',
    });

    const grant = (id: string, role: string, member: string) =>
      new ArtifactRegistryRepositoryIamMember(this, id, {
        location: this.repository.location,
        repository: this.repository.name,
        role,
        member,
      });
    grant('reader', 'roles/artifactregistry.reader', props.reader);
    grant('writer', 'roles/artifactregistry.writer', props.writer);
  }
}
