using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Bridge.Core.Callback;

namespace Bridge.Core.Internal;

/// <summary>The payload store could not take a payload; the callback answers 503 so Cloud Tasks retries.</summary>
internal sealed class PayloadStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Stores payloads too large to carry inside an outcome as blobs, once each. The blob's name is the outcome id and the
/// payload's SHA-256 (<c>{outcomeId}/{sha256}</c>): a redelivered callback names the same blob, and the write is
/// conditional (If-None-Match: *), so it never writes a second copy nor rewrites a blob a consumer may be reading;
/// "already exists" is success, since the name proves the content. Different bytes under one outcome id (a task name
/// reused without the bridge's instance stamp) get their own blob instead of replacing the bytes an earlier outcome
/// points at. A single Put Blob (payloads are far below the single-shot size) is atomic: a blob is whole or absent.
/// </summary>
internal sealed class BlobPayloadStore
{
    /// <summary>The payload's SHA-256 (hex) as blob metadata, so a reader can check what it fetched.</summary>
    public const string Sha256Metadata = "sha256";

    private readonly BlobContainerClient _container;

    public BlobPayloadStore(BlobContainerClient container) => _container = container;

    /// <summary>The container's address (no SAS, no key: safe to log and to put in outcomes).</summary>
    public Uri ContainerUri => _container.Uri;

    /// <summary>
    /// The store the options describe: keyless with the managed identity (user-assigned by client id, else
    /// DefaultAzureCredential), or a connection string for local use.
    /// </summary>
    public static BlobPayloadStore Create(PayloadStoreOptions options, string? managedIdentityClientId, TokenCredential? credential = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clientOptions = new BlobClientOptions();
        // A callback waits for the store: a few quick retries, then 503 and Cloud Tasks' own backoff takes over.
        clientOptions.Retry.MaxRetries = 2;
        clientOptions.Retry.Delay = TimeSpan.FromMilliseconds(200);
        clientOptions.Retry.MaxDelay = TimeSpan.FromSeconds(2);
        clientOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(20);
        var service = !string.IsNullOrEmpty(options.ConnectionString)
            ? new BlobServiceClient(options.ConnectionString, clientOptions)
            : new BlobServiceClient(
                options.BlobServiceUri ?? throw new InvalidOperationException($"{OutcomeOptions.SectionName}:PayloadStore has no BlobServiceUri or ConnectionString."),
                credential ?? (string.IsNullOrEmpty(managedIdentityClientId)
                    ? new DefaultAzureCredential()
                    : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(managedIdentityClientId))),
                clientOptions);
        return new BlobPayloadStore(service.GetBlobContainerClient(options.Container));
    }

    /// <summary>The blob a payload of this outcome is stored as.</summary>
    public static string BlobName(string outcomeId, string sha256) => $"{outcomeId}/{sha256}";

    /// <summary>Stores the payload unless it is there already; returns the blob's URI.</summary>
    public async Task<Uri> StoreAsync(string outcomeId, ReadOnlyMemory<byte> payload, string sha256, string? contentType, CancellationToken cancellationToken)
    {
        var blob = _container.GetBlobClient(BlobName(outcomeId, sha256));
        var upload = new BlobUploadOptions
        {
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = string.IsNullOrEmpty(contentType) ? "application/octet-stream" : contentType },
            Metadata = new Dictionary<string, string> { [Sha256Metadata] = sha256 },
            // One Put Blob, never staged blocks: atomic, and the condition holds for the whole write.
            TransferOptions = new Azure.Storage.StorageTransferOptions { InitialTransferSize = SingleShotLimit, MaximumTransferSize = SingleShotLimit },
        };
        if (payload.Length > SingleShotLimit)
        {
            throw new PayloadStoreException($"The payload ({payload.Length} bytes) is over the store's single-write limit of {SingleShotLimit} bytes.");
        }

        try
        {
            await blob.UploadAsync(BinaryData.FromBytes(payload), upload, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.Status == 409 && ex.ErrorCode == BlobErrorCode.BlobAlreadyExists || ex.Status == 412)
        {
            // Stored by an earlier attempt of this callback: same name, so same bytes.
        }
        catch (RequestFailedException ex) when (ex.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            throw new PayloadStoreException($"The payload container {_container.Uri} does not exist (infra creates it; locally, create it once).", ex);
        }
        catch (RequestFailedException ex)
        {
            throw new PayloadStoreException($"The payload store answered {ex.Status} {ex.ErrorCode} for container {_container.Uri}.", ex);
        }
        catch (AuthenticationFailedException ex)
        {
            throw new PayloadStoreException($"No token for the payload store ({_container.Uri}): {ex.GetType().Name}.", ex);
        }

        return blob.Uri;
    }

    // Far above any callback body (Cloud Tasks bodies are at most 1 MB), far below Put Blob's 5000 MiB.
    private const int SingleShotLimit = 64 * 1024 * 1024;
}
