using Bridge.CloudTasks.Auth;

namespace Bridge.CloudTasks;

/// <summary>Where the client's Google credential comes from.</summary>
public enum CloudTasksCredentialSource
{
    /// <summary>Application default credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud, or the metadata server.</summary>
    ApplicationDefault,

    /// <summary>A credential JSON file named by <see cref="CloudTasksClientOptions.CredentialsPath"/>.</summary>
    File,

    /// <summary>Keyless: the Azure managed identity's token exchanged through workload identity federation.</summary>
    AzureWorkloadIdentity,
}

/// <summary>Configuration of the Cloud Tasks client, bound from <c>Bridge:CloudTasks</c>.</summary>
public sealed class CloudTasksClientOptions
{
    public const string SectionName = "Bridge:CloudTasks";

    /// <summary><c>https://host[:port]</c>; empty for the production default.</summary>
    public string? Endpoint { get; set; }

    /// <summary>An emulator as <c>host:port</c>: plaintext, no credentials.</summary>
    public string? EmulatorHost { get; set; }

    /// <summary>
    /// Whether <c>CLOUD_TASKS_EMULATOR_HOST</c> is read. <see cref="EmulatorDetection.None"/> by default, as GAX
    /// configures clients through DI: a stray environment variable must not turn a production app into a plaintext
    /// client. Local setups set <see cref="EmulatorHost"/> (or this to <c>EmulatorOrProduction</c>).
    /// </summary>
    public EmulatorDetection EmulatorDetection { get; set; } = EmulatorDetection.None;

    public CloudTasksCredentialSource Credential { get; set; } = CloudTasksCredentialSource.ApplicationDefault;

    public string? CredentialsPath { get; set; }

    public AzureWorkloadIdentityFederationOptions WorkloadIdentity { get; set; } = new();

    /// <summary>Overrides every method's default deadline.</summary>
    public TimeSpan? Timeout { get; set; }

    public CloudTasksClientOptions Clone()
    {
        var copy = (CloudTasksClientOptions)MemberwiseClone();
        copy.WorkloadIdentity = WorkloadIdentity.Clone();
        return copy;
    }
}
