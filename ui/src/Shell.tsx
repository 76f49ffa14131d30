// The signed-in app: header, navigation and the screens.
import { AppShell, Badge, Burger, Group, Menu, NavLink, Switch, Text, Tooltip, UnstyledButton } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import {
  IconActivity,
  IconApps,
  IconChecklist,
  IconChevronDown,
  IconHome,
  IconLogout,
  IconPlugConnected,
  IconServer,
  IconSettings,
  IconUserCircle,
  IconUsers,
} from "@tabler/icons-react";
import { useQueryClient } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link, Navigate, Route, Routes, useLocation } from "react-router";
import { keys, useAction, useAsk, useCall } from "./api";
import { Brand } from "./components/Brand";
import { Tour } from "./components/Tour";
import { errorLine } from "./errors";
import { Activity } from "./screens/Activity";
import { Approvals } from "./screens/Approvals";
import { ConnectApp } from "./screens/ConnectApp";
import { ConnectServer } from "./screens/ConnectServer";
import { Home } from "./screens/Home";
import { People } from "./screens/People";
import { Servers } from "./screens/Servers";
import { Settings } from "./screens/Settings";
import type { AppStatus, User } from "./types";

interface NavItem {
  to: string;
  label: string;
  icon: ReactNode;
  id: string;
  admin?: boolean;
}

const NAV: NavItem[] = [
  { to: "/", label: "Home", icon: <IconHome size={18} />, id: "home" },
  { to: "/servers", label: "Servers", icon: <IconServer size={18} />, id: "servers" },
  { to: "/connect-server", label: "Connect a server", icon: <IconPlugConnected size={18} />, id: "connect-server" },
  { to: "/approvals", label: "Approvals", icon: <IconChecklist size={18} />, id: "approvals" },
  { to: "/activity", label: "Activity", icon: <IconActivity size={18} />, id: "activity" },
  { to: "/connect-app", label: "Connect your AI app", icon: <IconApps size={18} />, id: "connect-app" },
  { to: "/people", label: "People & agents", icon: <IconUsers size={18} />, id: "people", admin: true },
  { to: "/settings", label: "Settings", icon: <IconSettings size={18} />, id: "settings" },
];

export function Shell({
  status,
  user,
  tour,
  onTourClosed,
}: {
  status: AppStatus;
  user: User;
  tour: boolean;
  onTourClosed: () => void;
}) {
  const [opened, { toggle, close }] = useDisclosure();
  const { pathname } = useLocation();
  const admin = user.role === "admin";
  const approvals = useCall(keys.approvals, { call: "approvals" }, "approvals", { retry: false });
  const pending = approvals.data?.requests.length ?? 0;

  return (
    <AppShell
      header={{ height: 60 }}
      navbar={{ width: 250, breakpoint: "sm", collapsed: { mobile: !opened } }}
      padding="lg"
    >
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Show the menu" />
            <Brand />
          </Group>
          <Group gap="md" wrap="nowrap">
            {admin ? <PauseToggle paused={status.paused} /> : null}
            <UserMenu user={user} />
          </Group>
        </Group>
      </AppShell.Header>

      <AppShell.Navbar p="sm" aria-label="Main">
        {NAV.filter((n) => admin || !n.admin).map((n) => (
          <NavLink
            key={n.id}
            component={Link}
            to={n.to}
            label={n.label}
            leftSection={n.icon}
            active={n.to === "/" ? pathname === "/" : pathname.startsWith(n.to)}
            onClick={close}
            data-testid={`nav-${n.id}`}
            rightSection={
              n.id === "approvals" && pending > 0 ? (
                <Badge size="sm" color="red" circle data-testid="nav-approvals-count" aria-label={`${pending} waiting`}>
                  {pending}
                </Badge>
              ) : null
            }
          />
        ))}
      </AppShell.Navbar>

      <AppShell.Main>
        <Routes>
          <Route path="/" element={<Home status={status} user={user} />} />
          <Route path="/servers" element={<Servers admin={admin} />} />
          <Route path="/connect-server" element={<ConnectServer admin={admin} />} />
          <Route path="/approvals" element={<Approvals />} />
          <Route path="/activity" element={<Activity admin={admin} />} />
          <Route path="/connect-app" element={<ConnectApp />} />
          {admin ? <Route path="/people" element={<People me={user} />} /> : null}
          <Route path="/settings" element={<Settings admin={admin} />} />
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
      </AppShell.Main>
      <Tour opened={tour} onClose={onTourClosed} />
    </AppShell>
  );
}

function PauseToggle({ paused }: { paused: boolean }) {
  const call = useAsk();
  const pause = useAction((next: boolean) => call({ call: "agents_pause", paused: next }, "done"), {
    invalidate: [keys.status],
    onSuccess: (_, next) =>
      notifications.show({
        color: next ? "orange" : "teal",
        message: next
          ? "Every agent is paused. Nothing reaches your servers until you resume."
          : "Agents can work again.",
      }),
    onError: (e) => notifications.show({ color: "red", message: errorLine(e) }),
  });
  return (
    <Tooltip label={paused ? "Agents are paused: their calls are refused" : "Stop every agent's calls at once"}>
      <Switch
        checked={paused}
        onChange={(e) => pause.mutate(e.currentTarget.checked)}
        disabled={pause.isPending}
        color="orange"
        label={paused ? "Agents paused" : "Pause agents"}
        data-testid="pause-toggle"
      />
    </Tooltip>
  );
}

function UserMenu({ user }: { user: User }) {
  const call = useAsk();
  const client = useQueryClient();
  const signOut = async () => {
    try {
      await call({ call: "logout" }, "done");
    } catch (e) {
      notifications.show({ color: "red", message: errorLine(e) });
    }
    await client.resetQueries();
  };
  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <UnstyledButton aria-label={`Signed in as ${user.name}`} data-testid="user-menu">
          <Group gap={6} wrap="nowrap">
            <IconUserCircle size={22} aria-hidden />
            <Text size="sm" fw={500}>
              {user.name}
            </Text>
            <Badge size="xs" variant="light" color={user.role === "admin" ? "blue" : "gray"}>
              {user.role}
            </Badge>
            <IconChevronDown size={14} aria-hidden />
          </Group>
        </UnstyledButton>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>Signed in as {user.name}</Menu.Label>
        <Menu.Item leftSection={<IconLogout size={16} />} onClick={() => void signOut()} data-testid="signout">
          Sign out
        </Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}
