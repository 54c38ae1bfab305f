using Bridge.CloudTasks.Iam.V1;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>IAM RPCs on queues.</summary>
internal sealed partial class EmulatorState
{
    public Policy GetIamPolicy(GetIamPolicyRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Resource, "resource").ToString();
        lock (_gate)
        {
            RequireQueue(name);
            return CurrentPolicy(name);
        }
    }

    public Policy SetIamPolicy(SetIamPolicyRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Resource, "resource").ToString();
        if (request.Policy is null)
        {
            throw Errors.InvalidArgument("policy", "policy is required.");
        }

        IamRules.Validate(request.Policy);
        return Durably(() =>
        {
            RequireQueue(name);
            var current = CurrentPolicy(name);
            if (!request.Policy.Etag.IsEmpty && request.Policy.Etag != current.Etag)
            {
                throw Errors.Aborted("There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.");
            }

            var policy = IamRules.Replace(current, request.Policy, request.UpdateMask);
            _store.SavePolicy(name, policy);
            var previous = _policies.GetValueOrDefault(name);
            _policies[name] = policy;
            return new Undoable<Policy>(policy.Clone(), () => Restore(_policies, name, policy, previous));
        });
    }

    public TestIamPermissionsResponse TestIamPermissions(TestIamPermissionsRequest request)
    {
        IamRules.ValidatePermissions(request.Permissions);
        var response = new TestIamPermissionsResponse();
        if (!Bridge.CloudTasks.QueueName.TryParse(request.Resource, out var name))
        {
            return response;
        }

        lock (_gate)
        {
            // A missing resource answers an empty set, not NOT_FOUND.
            if (_queues.ContainsKey(name.ToString()))
            {
                response.Permissions.Add(IamRules.Granted(request.Permissions));
            }
        }

        return response;
    }

    private Policy CurrentPolicy(string resource) => _policies.TryGetValue(resource, out var policy) ? policy.Clone() : IamRules.Empty();
}
