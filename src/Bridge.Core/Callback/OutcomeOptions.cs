namespace Bridge.Core.Callback;

/// <summary>Outcome sinks, bound from <c>Bridge:Outcomes</c>.</summary>
public sealed class OutcomeOptions
{
    public const string SectionName = "Bridge:Outcomes";
    public const string LogSink = "Log";
    public const string ServiceBusSink = "ServiceBus";

    /// <summary><c>Log</c> (default) and/or <c>ServiceBus</c>.</summary>
    public List<string> Sinks { get; set; } = [];

    /// <summary>Keyless: the namespace, with the app's managed identity (or DefaultAzureCredential locally).</summary>
    public string? ServiceBusNamespace { get; set; }

    /// <summary>Alternative to <see cref="ServiceBusNamespace"/>, for local development.</summary>
    public string? ServiceBusConnectionString { get; set; }

    /// <summary>The queue or topic outcomes go to.</summary>
    public string? ServiceBusEntity { get; set; }

    public string? ManagedIdentityClientId { get; set; }

    /// <summary>
    /// Largest delivered payload carried inside an outcome. A larger one is left out (its size and SHA-256 are carried,
    /// with a note saying so), so the outcome still fits a Standard-tier Service Bus message (256 KB, the payload
    /// base64-encoded) and is never lost to a message that can't be sent.
    /// </summary>
    public int MaxInlinePayloadBytes { get; set; } = DefaultMaxInlinePayloadBytes;

    public const int DefaultMaxInlinePayloadBytes = 140_000;

    /// <summary>The Log sink also writes payloads (base64). Off by default: payloads are the senders' data.</summary>
    public bool LogPayloads { get; set; }

    /// <summary>
    /// Where payloads over <see cref="MaxInlinePayloadBytes"/> are stored, so the outcome carries a reference to them
    /// (<c>Bridge:Outcomes:PayloadStore</c>). Not configured: such an outcome carries only the payload's size and SHA-256.
    /// </summary>
    public PayloadStoreOptions PayloadStore { get; set; } = new();
}

/// <summary>
/// A container in Azure Blob Storage for payloads too large to carry inline: keyless with the app's managed identity
/// (<see cref="OutcomeOptions.ManagedIdentityClientId"/>, else DefaultAzureCredential), or a connection string for local
/// use (Azurite).
/// </summary>
public sealed class PayloadStoreOptions
{
    /// <summary>The storage account's blob endpoint, e.g. <c>https://account.blob.core.windows.net</c>.</summary>
    public Uri? BlobServiceUri { get; set; }

    /// <summary>Alternative to <see cref="BlobServiceUri"/>, for local development (Azurite); never logged.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The container payloads go to; it must exist (infra creates it), except with a connection string.</summary>
    public string? Container { get; set; }

    public bool IsConfigured => BlobServiceUri is not null || !string.IsNullOrEmpty(ConnectionString) || !string.IsNullOrEmpty(Container);
}
