using Bridge.CloudTasks.Auth;
using Bridge.CloudTasks.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bridge.CloudTasks;

public static class CloudTasksServiceCollectionExtensions
{
    /// <summary>
    /// Registers one shared <see cref="CloudTasksClient"/>, configured from <paramref name="configuration"/>
    /// (usually the <c>Bridge:CloudTasks</c> section) and then <paramref name="configure"/>, validated at start-up.
    /// </summary>
    public static IServiceCollection AddCloudTasksClient(
        this IServiceCollection services,
        IConfiguration? configuration = null,
        Action<CloudTasksClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<CloudTasksClientOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration);
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CloudTasksClientOptions>, CloudTasksClientOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => CreateClient(
            sp.GetRequiredService<IOptions<CloudTasksClientOptions>>().Value.Clone(),
            sp.GetRequiredService<TimeProvider>()));
        return services;
    }

    internal static CloudTasksClient CreateClient(CloudTasksClientOptions options, TimeProvider timeProvider, Func<string, string?>? environment = null)
    {
        var builder = new CloudTasksClientBuilder
        {
            Endpoint = string.IsNullOrEmpty(options.Endpoint) ? null : options.Endpoint,
            EmulatorHost = string.IsNullOrEmpty(options.EmulatorHost) ? null : options.EmulatorHost,
            EmulatorDetection = options.EmulatorDetection,
            TimeProvider = timeProvider,
        };
        if (environment is not null)
        {
            builder.GetEnvironmentVariable = environment;
        }

        var emulatorHost = builder.ResolveEmulatorHost();
        var fromEnvironment = string.IsNullOrEmpty(options.EmulatorHost);
        if (CloudTasksClientOptionsValidator.Ambiguity(options, emulatorHost, fromEnvironment ? CloudTasksClient.EmulatorHostEnvironmentVariable : CloudTasksClientOptions.SectionName + ":EmulatorHost") is { } ambiguity)
        {
            throw new InvalidOperationException(ambiguity);
        }

        if (emulatorHost is null)
        {
            switch (options.Credential)
            {
                case CloudTasksCredentialSource.File:
                    builder.CredentialsPath = options.CredentialsPath;
                    break;
                case CloudTasksCredentialSource.AzureWorkloadIdentity:
                    builder.Credential = AzureWorkloadIdentityFederation.CreateCredential(options.WorkloadIdentity);
                    break;
            }
        }

        if (options.Timeout is { } timeout)
        {
            builder.Settings = WithTimeout(CloudTasksSettings.GetDefault(), timeout);
        }

        return builder.Build();
    }

    private static CloudTasksSettings WithTimeout(CloudTasksSettings s, TimeSpan timeout)
    {
        CallSettings T(CallSettings c) => c with { Timeout = timeout };
        s.ListQueuesSettings = T(s.ListQueuesSettings);
        s.GetQueueSettings = T(s.GetQueueSettings);
        s.CreateQueueSettings = T(s.CreateQueueSettings);
        s.UpdateQueueSettings = T(s.UpdateQueueSettings);
        s.DeleteQueueSettings = T(s.DeleteQueueSettings);
        s.PurgeQueueSettings = T(s.PurgeQueueSettings);
        s.PauseQueueSettings = T(s.PauseQueueSettings);
        s.ResumeQueueSettings = T(s.ResumeQueueSettings);
        s.GetIamPolicySettings = T(s.GetIamPolicySettings);
        s.SetIamPolicySettings = T(s.SetIamPolicySettings);
        s.TestIamPermissionsSettings = T(s.TestIamPermissionsSettings);
        s.ListTasksSettings = T(s.ListTasksSettings);
        s.GetTaskSettings = T(s.GetTaskSettings);
        s.CreateTaskSettings = T(s.CreateTaskSettings);
        s.CreateNamedTaskSettings = T(s.CreateNamedTaskSettings);
        s.DeleteTaskSettings = T(s.DeleteTaskSettings);
        s.RunTaskSettings = T(s.RunTaskSettings);
        s.GetCmekConfigSettings = T(s.GetCmekConfigSettings);
        s.UpdateCmekConfigSettings = T(s.UpdateCmekConfigSettings);
        return s;
    }
}
