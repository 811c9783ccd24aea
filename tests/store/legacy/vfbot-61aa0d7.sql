--
-- PostgreSQL database dump
--

\restrict TLvBt4uEPkRzRgQEBsCUq3j35gVbdCWYjkywkyH4CJmas8Hx3e7O2nGjgpS06cz

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(100) NOT NULL,
    action character varying(100) NOT NULL,
    target character varying(200) NOT NULL,
    result character varying(100) NOT NULL,
    detail jsonb NOT NULL
);


--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_log_id_seq OWNED BY public.audit_log.id;


--
-- Name: event_deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_deliveries (
    event_id bigint NOT NULL,
    subscriber character varying(100) NOT NULL,
    worker character varying(200) NOT NULL,
    lease_until timestamp with time zone,
    delivered_at timestamp with time zone
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id bigint NOT NULL,
    request_id bigint NOT NULL,
    instance_id bigint,
    kind character varying(100) NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;


--
-- Name: instances; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.instances (
    id bigint NOT NULL,
    request_id bigint NOT NULL,
    "position" integer NOT NULL,
    name character varying(200) NOT NULL,
    state character varying(32) NOT NULL,
    spec jsonb NOT NULL,
    server_id bigint,
    hypervisor_id bigint,
    group_id bigint,
    ipv4 jsonb NOT NULL,
    os_name character varying(200),
    error text,
    attempts integer NOT NULL,
    intent_at timestamp with time zone,
    build_started_at timestamp with time zone,
    finished_at timestamp with time zone,
    lease_owner character varying(200),
    lease_until timestamp with time zone,
    next_check_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: instances_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.instances_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: instances_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.instances_id_seq OWNED BY public.instances.id;


--
-- Name: operations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operations (
    id bigint NOT NULL,
    kind character varying(32) NOT NULL,
    server_id bigint NOT NULL,
    server_name character varying(200) NOT NULL,
    requester character varying(100) NOT NULL,
    state character varying(32) NOT NULL,
    params jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone,
    decided_by character varying(100),
    decided_at timestamp with time zone,
    decision_note text,
    result text,
    request_id bigint,
    slack_channel character varying(50),
    slack_ts character varying(50)
);


--
-- Name: operations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.operations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: operations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.operations_id_seq OWNED BY public.operations.id;


--
-- Name: requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.requests (
    id bigint NOT NULL,
    key character varying(200) NOT NULL,
    requester character varying(100) NOT NULL,
    source character varying(20) NOT NULL,
    project_name character varying(200) NOT NULL,
    payload jsonb NOT NULL,
    plan jsonb,
    state character varying(32) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    decided_by character varying(100),
    decided_at timestamp with time zone,
    decision_note text,
    expires_at timestamp with time zone,
    slack_channel character varying(50),
    slack_ts character varying(50),
    slack_notice_ts character varying(50),
    cancel_requested boolean NOT NULL,
    delete_on_cancel boolean NOT NULL
);


--
-- Name: requests_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: requests_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.requests_id_seq OWNED BY public.requests.id;


--
-- Name: slack_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.slack_events (
    event_id character varying(200) NOT NULL,
    seen_at timestamp with time zone NOT NULL
);


--
-- Name: audit_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log ALTER COLUMN id SET DEFAULT nextval('public.audit_log_id_seq'::regclass);


--
-- Name: events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ALTER COLUMN id SET DEFAULT nextval('public.events_id_seq'::regclass);


--
-- Name: instances id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances ALTER COLUMN id SET DEFAULT nextval('public.instances_id_seq'::regclass);


--
-- Name: operations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operations ALTER COLUMN id SET DEFAULT nextval('public.operations_id_seq'::regclass);


--
-- Name: requests id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests ALTER COLUMN id SET DEFAULT nextval('public.requests_id_seq'::regclass);


--
-- Data for Name: audit_log; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.audit_log VALUES (1, '2025-01-06 09:00:00+00', 'U0REQUESTER', 'request.submit', 'VF-1', 'pending_approval', '{"source": "slack", "servers": 2}');
INSERT INTO public.audit_log VALUES (2, '2025-01-06 09:00:00+00', 'U0APPROVER', 'request.approved', 'VF-1', 'ok', '{}');
INSERT INTO public.audit_log VALUES (3, '2025-01-06 09:00:08+00', 'vfbot', 'request.finish', 'VF-1', 'completed', '{"built": 2, "failed": 0, "created": 0, "deleted": 0, "planned": 0, "building": 0, "creating": 0, "cancelled": 0, "create_unknown": 0}');
INSERT INTO public.audit_log VALUES (4, '2025-01-06 09:00:24+00', 'U0REQUESTER', 'request.submit', 'VF-2', 'pending_approval', '{"source": "slack", "servers": 1}');
INSERT INTO public.audit_log VALUES (5, '2025-01-06 09:00:24+00', 'U0APPROVER', 'request.approved', 'VF-2', 'ok', '{}');
INSERT INTO public.audit_log VALUES (6, '2025-01-06 09:00:32+00', 'vfbot', 'request.finish', 'VF-2', 'failed', '{"built": 0, "failed": 1, "created": 0, "deleted": 0, "planned": 0, "building": 0, "creating": 0, "cancelled": 0, "create_unknown": 0}');
INSERT INTO public.audit_log VALUES (7, '2025-01-06 09:00:48+00', 'U0REQUESTER', 'server.delete.request', 'server 102 (web-2)', 'pending_approval', '{"delay_min": 0, "operation": "OP-1"}');
INSERT INTO public.audit_log VALUES (8, '2025-01-06 09:00:48+00', 'U0APPROVER', 'server.delete.approve', 'server 102 (web-2)', 'ok', '{"operation": "OP-1"}');
INSERT INTO public.audit_log VALUES (9, '2025-01-06 09:00:48+00', 'U0REQUESTER', 'server.delete', 'server 102 (web-2)', 'ok', '{"result": "server 102 (web-2) deleted.", "delay_min": 0, "operation": "OP-1", "approved_by": "U0APPROVER"}');
INSERT INTO public.audit_log VALUES (10, '2025-01-06 09:00:54+00', 'U0REQUESTER', 'request.submit', 'VF-3', 'pending_approval', '{"source": "slack", "servers": 2}');
INSERT INTO public.audit_log VALUES (11, '2025-01-06 09:00:54+00', 'U0APPROVER', 'request.approved', 'VF-3', 'ok', '{}');


--
-- Data for Name: event_deliveries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.event_deliveries VALUES (1, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (2, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (3, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (4, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (5, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (6, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (7, 'slack', 'slack-57c04f59', '2025-01-06 09:00:30+00', '2025-01-06 09:00:00+00');
INSERT INTO public.event_deliveries VALUES (8, 'slack', 'slack-57c04f59', '2025-01-06 09:00:38+00', '2025-01-06 09:00:08+00');
INSERT INTO public.event_deliveries VALUES (9, 'slack', 'slack-57c04f59', '2025-01-06 09:00:38+00', '2025-01-06 09:00:08+00');
INSERT INTO public.event_deliveries VALUES (10, 'slack', 'slack-57c04f59', '2025-01-06 09:00:38+00', '2025-01-06 09:00:08+00');
INSERT INTO public.event_deliveries VALUES (11, 'slack', 'slack-57c04f59', '2025-01-06 09:00:54+00', '2025-01-06 09:00:24+00');
INSERT INTO public.event_deliveries VALUES (12, 'slack', 'slack-57c04f59', '2025-01-06 09:00:54+00', '2025-01-06 09:00:24+00');
INSERT INTO public.event_deliveries VALUES (13, 'slack', 'slack-57c04f59', '2025-01-06 09:00:54+00', '2025-01-06 09:00:24+00');
INSERT INTO public.event_deliveries VALUES (14, 'slack', 'slack-57c04f59', '2025-01-06 09:00:54+00', '2025-01-06 09:00:24+00');
INSERT INTO public.event_deliveries VALUES (15, 'slack', 'slack-57c04f59', '2025-01-06 09:00:54+00', '2025-01-06 09:00:24+00');
INSERT INTO public.event_deliveries VALUES (16, 'slack', 'slack-57c04f59', '2025-01-06 09:01:02+00', '2025-01-06 09:00:32+00');
INSERT INTO public.event_deliveries VALUES (17, 'slack', 'slack-57c04f59', '2025-01-06 09:01:02+00', '2025-01-06 09:00:32+00');
INSERT INTO public.event_deliveries VALUES (18, 'slack', 'slack-57c04f59', '2025-01-06 09:01:18+00', '2025-01-06 09:00:48+00');
INSERT INTO public.event_deliveries VALUES (19, 'slack', 'slack-57c04f59', '2025-01-06 09:01:24+00', '2025-01-06 09:00:54+00');
INSERT INTO public.event_deliveries VALUES (20, 'slack', 'slack-57c04f59', '2025-01-06 09:01:24+00', '2025-01-06 09:00:54+00');
INSERT INTO public.event_deliveries VALUES (21, 'slack', 'slack-57c04f59', '2025-01-06 09:01:24+00', '2025-01-06 09:00:54+00');


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.events VALUES (1, 1, NULL, 'request.submitted', '{"servers": 2, "requester": "U0REQUESTER", "approval_required": true}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (2, 1, NULL, 'request.approved', '{"by": "U0APPROVER", "reason": ""}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (3, 1, NULL, 'request.started', '{}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (4, 1, 1, 'instance.created', '{"ipv4": ["192.0.2.100"], "name": "web-1", "group": "Prague", "server_id": 101, "hypervisor": "prg-hv1", "reconciled": false, "hypervisor_id": 1}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (5, 1, 2, 'instance.created', '{"ipv4": ["192.0.2.150"], "name": "web-2", "group": "Prague", "server_id": 102, "hypervisor": "prg-hv2", "reconciled": false, "hypervisor_id": 2}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (6, 1, 2, 'instance.build_started', '{"os": "Ubuntu 22.04 Server", "name": "web-2", "server_id": 102}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (7, 1, 1, 'instance.build_started', '{"os": "Ubuntu 22.04 Server", "name": "web-1", "server_id": 101}', '2025-01-06 09:00:00+00');
INSERT INTO public.events VALUES (8, 1, 1, 'instance.built', '{"os": "Ubuntu 22.04", "ipv4": ["192.0.2.100"], "name": "web-1", "seconds": 8, "server_id": 101}', '2025-01-06 09:00:08+00');
INSERT INTO public.events VALUES (9, 1, 2, 'instance.built', '{"os": "Ubuntu 22.04", "ipv4": ["192.0.2.150"], "name": "web-2", "seconds": 8, "server_id": 102}', '2025-01-06 09:00:08+00');
INSERT INTO public.events VALUES (10, 1, NULL, 'request.finished', '{"built": 2, "state": "completed"}', '2025-01-06 09:00:08+00');
INSERT INTO public.events VALUES (11, 2, NULL, 'request.submitted', '{"servers": 1, "requester": "U0REQUESTER", "approval_required": true}', '2025-01-06 09:00:24+00');
INSERT INTO public.events VALUES (12, 2, NULL, 'request.approved', '{"by": "U0APPROVER", "reason": ""}', '2025-01-06 09:00:24+00');
INSERT INTO public.events VALUES (13, 2, NULL, 'request.started', '{}', '2025-01-06 09:00:24+00');
INSERT INTO public.events VALUES (14, 2, 3, 'instance.created', '{"ipv4": ["192.0.2.101"], "name": "db", "group": "Prague", "server_id": 103, "hypervisor": "prg-hv1", "reconciled": false, "hypervisor_id": 1}', '2025-01-06 09:00:24+00');
INSERT INTO public.events VALUES (15, 2, 3, 'instance.build_started', '{"os": "Ubuntu 22.04 Server", "name": "db", "server_id": 103}', '2025-01-06 09:00:24+00');
INSERT INTO public.events VALUES (16, 2, 3, 'instance.failed', '{"name": "db", "error": "the panel reports that the OS installation failed (buildFailed)", "stage": "build", "deleted": false, "server_id": 103}', '2025-01-06 09:00:32+00');
INSERT INTO public.events VALUES (17, 2, NULL, 'request.finished', '{"state": "failed", "failed": 1}', '2025-01-06 09:00:32+00');
INSERT INTO public.events VALUES (18, 1, 2, 'instance.deleted', '{"by": "U0REQUESTER", "name": "web-2", "delay_min": 0, "server_id": 102, "already_gone": false}', '2025-01-06 09:00:48+00');
INSERT INTO public.events VALUES (19, 3, NULL, 'request.submitted', '{"servers": 2, "requester": "U0REQUESTER", "approval_required": true}', '2025-01-06 09:00:54+00');
INSERT INTO public.events VALUES (20, 3, NULL, 'request.approved', '{"by": "U0APPROVER", "reason": ""}', '2025-01-06 09:00:54+00');
INSERT INTO public.events VALUES (21, 3, NULL, 'request.started', '{}', '2025-01-06 09:00:54+00');


--
-- Data for Name: instances; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.instances VALUES (4, 3, 0, 'app-1', 'planned', '{"ipv4": null, "name": "app-1", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "app-1", "sshKeys": [1], "hostname": "app-1", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}', NULL, NULL, NULL, '[]', NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-06 09:00:54+00', '2025-01-06 09:00:54+00');
INSERT INTO public.instances VALUES (5, 3, 1, 'app-2', 'planned', '{"ipv4": null, "name": "app-2", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "app-2", "sshKeys": [1], "hostname": "app-2", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}', NULL, NULL, NULL, '[]', NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, '2025-01-06 09:00:54+00', '2025-01-06 09:00:54+00');
INSERT INTO public.instances VALUES (1, 1, 0, 'web-1', 'built', '{"ipv4": null, "name": "web-1", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "web-1", "sshKeys": [1], "hostname": "web-1", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}', 101, 1, 1, '["192.0.2.100"]', 'Ubuntu 22.04', NULL, 1, '2025-01-06 09:00:00+00', '2025-01-06 09:00:00+00', '2025-01-06 09:00:08+00', NULL, NULL, NULL, '2025-01-06 09:00:08+00', '2025-01-06 09:00:00+00');
INSERT INTO public.instances VALUES (3, 2, 0, 'db', 'failed', '{"ipv4": null, "name": "db", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "db", "sshKeys": [1], "hostname": "db", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}', 103, 1, 1, '["192.0.2.101"]', NULL, 'the panel reports that the OS installation failed (buildFailed)', 1, '2025-01-06 09:00:24+00', '2025-01-06 09:00:24+00', '2025-01-06 09:00:32+00', NULL, NULL, NULL, '2025-01-06 09:00:32+00', '2025-01-06 09:00:24+00');
INSERT INTO public.instances VALUES (2, 1, 1, 'web-2', 'deleted', '{"ipv4": null, "name": "web-2", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "web-2", "sshKeys": [1], "hostname": "web-2", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}', 102, 2, 1, '["192.0.2.150"]', 'Ubuntu 22.04', NULL, 1, '2025-01-06 09:00:00+00', '2025-01-06 09:00:00+00', '2025-01-06 09:00:48+00', NULL, NULL, NULL, '2025-01-06 09:00:48+00', '2025-01-06 09:00:00+00');


--
-- Data for Name: operations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.operations VALUES (1, 'delete', 102, 'web-2', 'U0REQUESTER', 'done', '{"delay_min": 0}', '2025-01-06 09:00:48+00', '2025-01-06 09:00:48+00', '2025-02-05 09:00:48+00', 'U0APPROVER', '2025-01-06 09:00:48+00', NULL, 'server 102 (web-2) deleted.', 1, 'C0OPS', '1700000000.003000');


--
-- Data for Name: requests; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.requests VALUES (1, 'slack-view:V0000000e', 'U0REQUESTER', 'slack', 'shop', '{"instances": [{"name": "web", "template": "1", "ssh_key_name": "default", "hypervisor_group": 1, "number_of_instances": 2}], "project_name": "shop"}', '{"groups": [{"ipv4": 2, "disk_gb": 50, "servers": 2, "group_id": 1, "memory_mb": 2048, "group_name": "Prague"}], "servers": [{"ipv4": null, "name": "web-1", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "web-1", "sshKeys": [1], "hostname": "web-1", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}, {"ipv4": null, "name": "web-2", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "web-2", "sshKeys": [1], "hostname": "web-2", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}], "warnings": [], "package_id": 1, "package_name": "Small", "project_name": "shop", "owner_user_id": 1}', 'completed', '2025-01-06 09:00:00+00', '2025-01-06 09:00:08+00', 'U0APPROVER', '2025-01-06 09:00:00+00', NULL, '2025-02-05 09:00:00+00', 'C0OPS', '1700000000.000100', '1700000000.001500', false, false);
INSERT INTO public.requests VALUES (2, 'slack-view:V00000011', 'U0REQUESTER', 'slack', 'broken', '{"instances": [{"name": "db", "template": "1", "ssh_key_name": "default", "hypervisor_group": 1, "number_of_instances": 1}], "project_name": "broken"}', '{"groups": [{"ipv4": 1, "disk_gb": 25, "servers": 1, "group_id": 1, "memory_mb": 1024, "group_name": "Prague"}], "servers": [{"ipv4": null, "name": "db", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "db", "sshKeys": [1], "hostname": "db", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}], "warnings": [], "package_id": 1, "package_name": "Small", "project_name": "broken", "owner_user_id": 1}', 'failed', '2025-01-06 09:00:24+00', '2025-01-06 09:00:32+00', 'U0APPROVER', '2025-01-06 09:00:24+00', NULL, '2025-02-05 09:00:24+00', 'C0OPS', '1700000000.001600', '1700000000.002600', false, false);
INSERT INTO public.requests VALUES (3, 'slack-view:V00000018', 'U0REQUESTER', 'slack', 'later', '{"instances": [{"name": "app", "template": "1", "ssh_key_name": "default", "hypervisor_group": 1, "number_of_instances": 2}], "project_name": "later"}', '{"groups": [{"ipv4": 2, "disk_gb": 50, "servers": 2, "group_id": 1, "memory_mb": 2048, "group_name": "Prague"}], "servers": [{"ipv4": null, "name": "app-1", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "app-1", "sshKeys": [1], "hostname": "app-1", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}, {"ipv4": null, "name": "app-2", "os_id": 1, "disk_gb": 25, "volumes": [], "group_id": 1, "os_label": "Ubuntu 22.04 Server", "cpu_cores": 1, "memory_mb": 1024, "build_body": {"name": "app-2", "sshKeys": [1], "hostname": "app-2", "operatingSystemId": 1}, "group_name": "Prague", "ssh_key_id": 1, "create_body": {"userId": 1, "packageId": 1, "hypervisorId": 1}, "ssh_key_name": "default", "bandwidth_mbps": null, "instance_index": 0, "hypervisor_hint": null, "network_profile": null, "firewall_rulesets": null, "network_profile_source": "package default"}], "warnings": [], "package_id": 1, "package_name": "Small", "project_name": "later", "owner_user_id": 1}', 'running', '2025-01-06 09:00:54+00', '2025-01-06 09:00:54+00', 'U0APPROVER', '2025-01-06 09:00:54+00', NULL, '2025-02-05 09:00:54+00', 'C0OPS', '1700000000.003700', NULL, false, false);


--
-- Data for Name: slack_events; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: audit_log_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.audit_log_id_seq', 11, true);


--
-- Name: events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.events_id_seq', 21, true);


--
-- Name: instances_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.instances_id_seq', 5, true);


--
-- Name: operations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.operations_id_seq', 1, true);


--
-- Name: requests_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.requests_id_seq', 3, true);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);


--
-- Name: event_deliveries event_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_deliveries
    ADD CONSTRAINT event_deliveries_pkey PRIMARY KEY (event_id, subscriber);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: instances instances_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_pkey PRIMARY KEY (id);


--
-- Name: instances instances_server_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_server_id_key UNIQUE (server_id);


--
-- Name: operations operations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operations
    ADD CONSTRAINT operations_pkey PRIMARY KEY (id);


--
-- Name: requests requests_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_key_key UNIQUE (key);


--
-- Name: requests requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);


--
-- Name: slack_events slack_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_events
    ADD CONSTRAINT slack_events_pkey PRIMARY KEY (event_id);


--
-- Name: instances uq_instances_request_position; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT uq_instances_request_position UNIQUE (request_id, "position");


--
-- Name: ix_audit_log_actor; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_actor ON public.audit_log USING btree (actor);


--
-- Name: ix_events_request_id_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_events_request_id_id ON public.events USING btree (request_id, id);


--
-- Name: ix_instances_request_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_instances_request_id ON public.instances USING btree (request_id);


--
-- Name: ix_instances_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_instances_state ON public.instances USING btree (state);


--
-- Name: ix_operations_server_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_operations_server_id ON public.operations USING btree (server_id);


--
-- Name: ix_operations_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_operations_state ON public.operations USING btree (state);


--
-- Name: ix_requests_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_requests_state ON public.requests USING btree (state);


--
-- Name: ix_slack_events_seen_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_slack_events_seen_at ON public.slack_events USING btree (seen_at);


--
-- Name: event_deliveries event_deliveries_event_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_deliveries
    ADD CONSTRAINT event_deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES public.events(id) ON DELETE CASCADE;


--
-- Name: events events_instance_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES public.instances(id) ON DELETE CASCADE;


--
-- Name: events events_request_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;


--
-- Name: instances instances_request_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instances
    ADD CONSTRAINT instances_request_id_fkey FOREIGN KEY (request_id) REFERENCES public.requests(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--

\unrestrict TLvBt4uEPkRzRgQEBsCUq3j35gVbdCWYjkywkyH4CJmas8Hx3e7O2nGjgpS06cz

