using System.Security.Cryptography;
using Bridge.CloudTasks.Iam.V1;
using Google.Protobuf;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>IAM policy rules of the service: what a policy may hold, its etag, and the permissions Cloud Tasks knows.</summary>
internal static class IamRules
{
    private static readonly string[] MemberPrefixes = ["user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:", "deleted:"];

    public static readonly IReadOnlySet<string> KnownPermissions = new HashSet<string>(StringComparer.Ordinal)
    {
        "cloudtasks.queues.create", "cloudtasks.queues.delete", "cloudtasks.queues.get", "cloudtasks.queues.list",
        "cloudtasks.queues.pause", "cloudtasks.queues.resume", "cloudtasks.queues.purge", "cloudtasks.queues.update",
        "cloudtasks.queues.getIamPolicy", "cloudtasks.queues.setIamPolicy",
        "cloudtasks.tasks.create", "cloudtasks.tasks.delete", "cloudtasks.tasks.get", "cloudtasks.tasks.list",
        "cloudtasks.tasks.run", "cloudtasks.tasks.fullView",
        "cloudtasks.locations.get", "cloudtasks.locations.list",
    };

    /// <summary>Rejects roles and members the service would reject, naming the field.</summary>
    public static void Validate(Policy policy)
    {
        foreach (var binding in policy.Bindings)
        {
            if (!binding.Role.StartsWith("roles/", StringComparison.Ordinal))
            {
                throw Errors.InvalidArgument("policy.bindings.role", $"Role '{binding.Role}' must start with 'roles/'.");
            }

            foreach (var member in binding.Members)
            {
                if (!IsValidMember(member))
                {
                    throw Errors.InvalidArgument("policy.bindings.members", $"Member '{member}' is not of a known type (user:, serviceAccount:, group:, domain:, principal:, principalSet:, allUsers, allAuthenticatedUsers).");
                }
            }
        }
    }

    public static bool IsValidMember(string member) =>
        member is "allUsers" or "allAuthenticatedUsers"
        || MemberPrefixes.Any(p => member.StartsWith(p, StringComparison.Ordinal) && member.Length > p.Length);

    /// <summary>The policy as stored after SetIamPolicy: audit configs kept unless the mask names them, version and etag set.</summary>
    public static Policy Replace(Policy current, Policy requested, Google.Protobuf.WellKnownTypes.FieldMask? mask)
    {
        var policy = requested.Clone();
        if (mask is { Paths.Count: > 0 } && !mask.Paths.Contains("audit_configs"))
        {
            policy.AuditConfigs.Clear();
            policy.AuditConfigs.Add(current.AuditConfigs);
        }

        policy.Version = policy.Bindings.Any(b => b.Condition is not null) ? 3 : Math.Max(1, policy.Version);
        policy.Etag = ComputeEtag(policy);
        return policy;
    }

    /// <summary>What a resource without a policy answers: version 1, no bindings, an etag.</summary>
    public static Policy Empty()
    {
        var empty = new Policy { Version = 1 };
        empty.Etag = ComputeEtag(empty);
        return empty;
    }

    public static ByteString ComputeEtag(Policy policy)
    {
        var copy = policy.Clone();
        copy.Etag = ByteString.Empty;
        return ByteString.CopyFrom(SHA256.HashData(copy.ToByteArray()).AsSpan(0, 8));
    }

    /// <summary>Wildcards are refused, as by the service.</summary>
    public static void ValidatePermissions(IEnumerable<string> permissions)
    {
        foreach (var permission in permissions)
        {
            if (permission.Contains('*', StringComparison.Ordinal))
            {
                throw Errors.InvalidArgument("permissions", $"Permissions with wildcards ('{permission}') are not allowed.");
            }
        }
    }

    /// <summary>
    /// The emulator has no callers' identities: every caller holds every Cloud Tasks permission, so the answer is
    /// the asked permissions that Cloud Tasks knows.
    /// </summary>
    public static IEnumerable<string> Granted(IEnumerable<string> asked) => asked.Where(KnownPermissions.Contains).Distinct(StringComparer.Ordinal);
}
